/* Out-of-memory paths of the worker core, with an allocator that fails on the Nth call: a
 * storage result is never lost on its way back to its worker, work waiting for a user runs (as
 * failed) instead of vanishing with what it holds, and a message that cannot be routed leaves
 * its sender's stream-management count free to settle. Linked with --wrap for the allocation
 * functions (CMakeLists.txt), so only calls from the project's own code are counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/router.h"
#include "core/session.h"
#include "core/user.h"

/* ---- the failing allocator (this thread only) ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

static _Thread_local long fail_at; /* the call that fails, counted from arming; 0: none */
static _Thread_local long fail_calls;
static _Thread_local int fail_all; /* every call fails */

static void arm(long n)
{
    fail_at = n;
    fail_calls = 0;
    fail_all = 0;
}

static void disarm(void)
{
    fail_at = 0;
    fail_all = 0;
}

static int failing(void)
{
    if (fail_all)
        return 1;
    return fail_at && ++fail_calls == fail_at;
}

void *__wrap_malloc(size_t n)
{
    return failing() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return failing() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return failing() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return failing() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return failing() ? NULL : __real_strndup(s, n);
}

/* ---- a server with workers whose loops are run by hand ---- */

typedef struct fixture {
    server_t srv;
    worker_t w[2];
    worker_t *ws[2];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = __real_calloc(1, sizeof(*f));
    f->srv.set.domain = "example.org";
    f->srv.set.muc_domain = "muc.example.org";
    f->srv.nworkers = 2;
    f->srv.workers = f->ws;
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(worker__init(&f->srv, &f->w[i], i), 0);
        f->ws[i] = &f->w[i];
    }
    *state = f;
    return 0;
}

static void close_any(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (unsigned i = 0; i < 2; i++) {
        uv_walk(&f->w[i].loop, close_any, NULL);
        worker__free(&f->w[i]);
    }
    free(f);
    return 0;
}

/* ---- a storage result posted while no memory is left still reaches its callback ---- */

static int blob_calls;
static void on_blob(void *ud, int err, const char *xml)
{
    assert_ptr_equal(ud, &blob_calls);
    assert_int_equal(err, HEARTH_ENOTFOUND);
    blob_calls++;
}

static void test_storage_result_never_lost(void **state)
{
    fixture_t *f = *state;
    worker_t *w = &f->w[0];
    storage_req_t *req = calloc(1, sizeof(*req));
    assert_non_null(req);
    req->op = STORAGE_OP_VCARD_GET;
    req->cb.blob = on_blob;
    req->ud = &blob_calls;
    req->err = HEARTH_ENOTFOUND;
    blob_calls = 0;
    fail_all = 1;
    w->storage_target.post(w->storage_target.post_ud, req); /* as the storage thread does */
    disarm();
    uv_run(&w->loop, UV_RUN_NOWAIT);
    assert_int_equal(blob_calls, 1);
}

/* ---- work waiting for a user runs, as failed, when memory runs out ---- */

typedef struct op_seen {
    int calls;
    user_state_t state;
    void *arg;
} op_seen_t;
static op_seen_t seen;

static void record_op(worker_t *w, user_t *u, void *arg)
{
    seen.calls++;
    seen.state = u->state;
    seen.arg = arg;
}

static void test_acquire_runs_failed_when_user_cannot_be_made(void **state)
{
    fixture_t *f = *state;
    worker_t *w = &f->w[0];
    int token;
    /* Each allocation of making the user in turn (the record, its names, its maps). */
    for (long n = 1; n <= 20; n++) {
        memset(&seen, 0, sizeof(seen));
        arm(n);
        user__acquire(w, "alice@example.org", record_op, &token);
        long used = fail_calls;
        disarm();
        if (used < n)
            break; /* made without failing: every allocation point was covered */
        assert_int_equal(seen.calls, 1);
        assert_int_equal(seen.state, USER_FAILED);
        assert_ptr_equal(seen.arg, &token);
        assert_null(worker__user(w, "alice@example.org", 0));
    }
}

static void test_acquire_runs_failed_when_it_cannot_wait(void **state)
{
    fixture_t *f = *state;
    worker_t *w = &f->w[0];
    user_t *u = worker__user(w, "bob@example.org", 1);
    assert_non_null(u);
    u->state = USER_LOADING; /* another request loads it: this one must queue */
    int token;
    memset(&seen, 0, sizeof(seen));
    arm(1);
    user__acquire(w, "bob@example.org", record_op, &token);
    disarm();
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.state, USER_FAILED);
    assert_ptr_equal(seen.arg, &token);
    assert_null(u->ops_head);
    u->state = USER_NEW;
    worker__user_drop_if_empty(w, u);
}

/* ---- a message that cannot be handed over is counted at once by its sender ---- */

typedef struct fake_session {
    session_t s;
    int deferred; /* defer_settle was asked */
    int settled;  /* settled was called */
    uint32_t settled_seq;
} fake_session_t;

static int fake_defer(session_t *s, char *sm_id, uint32_t *seq)
{
    fake_session_t *f = (fake_session_t *)s;
    strcpy(sm_id, "abc");
    *seq = 7;
    f->deferred++;
    return 1;
}

static void fake_settled(session_t *s, const char *sm_id, uint32_t seq)
{
    fake_session_t *f = (fake_session_t *)s;
    assert_string_equal(sm_id, "abc");
    f->settled++;
    f->settled_seq = seq;
}

static const session_ops_t fake_ops = {.defer_settle = fake_defer, .settled = fake_settled};

static void test_route_failure_settles_the_sender(void **state)
{
    fixture_t *f = *state;
    const char *to = "carol@example.org/phone";
    worker_t *home = worker__home(&f->srv, "carol@example.org");
    worker_t *w = home == &f->w[0] ? &f->w[1] : &f->w[0];
    fake_session_t *sender = calloc(1, sizeof(*sender));
    assert_non_null(sender);
    sender->s.ops = &fake_ops;
    hearth_bytes_t *bytes = hearth_bytes_new("<message/>", 10);
    assert_non_null(bytes);
    for (long n = 1;; n++) {
        sender->deferred = sender->settled = 0;
        arm(n);
        int rc =
            router__route_settled(w, to, "dave@example.org/pc", "chat", NULL, &sender->s, bytes, 0);
        long used = fail_calls;
        disarm();
        if (used < n) { /* every allocation succeeded: handed over, settled there later */
            assert_int_equal(rc, 0);
            assert_int_equal(sender->deferred, 1);
            assert_int_equal(sender->settled, 0);
            assert_int_equal(bytes->refs, 2);
            inbox_msg_t *m = home->inbox_head;
            assert_non_null(m);
            assert_string_equal(m->u.route.to, to);
            assert_string_equal(m->u.route.settle_sm, "abc");
            assert_int_equal(m->u.route.settle_seq, 7);
            home->inbox_head = home->inbox_tail = NULL;
            home->inbox_len = 0;
            hearth_bytes_unref(m->u.route.bytes);
            free(m->u.route.to);
            free(m->u.route.from);
            free(m);
            __atomic_sub_fetch(&f->srv.inbox_pending, 1, __ATOMIC_ACQ_REL);
            break;
        }
        assert_int_equal(rc, HEARTH_ENOMEM);
        /* nothing was marked to wait for a destination: the sender counts it now */
        assert_int_equal(sender->settled, sender->deferred);
        assert_int_equal(bytes->refs, 1); /* nothing holds the bytes */
        assert_null(home->inbox_head);
        assert_true(n < 10);
    }
    hearth_bytes_unref(bytes);
    free(sender);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_storage_result_never_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acquire_runs_failed_when_user_cannot_be_made, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_acquire_runs_failed_when_it_cannot_wait, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_route_failure_settles_the_sender, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
