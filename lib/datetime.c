/* XEP-0082 date-times (include/hearth/datetime.h): a strict reading, digit by digit, since the
 * stamps come from clients and imported files. */
#include "hearth/datetime.h"

#include <stdio.h>
#include <time.h>

static int digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*s)[i];
        if (ch < '0' || ch > '9')
            return -1;
        v = v * 10 + (ch - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

int hearth_datetime_parse(const char *s, int64_t *ms)
{
    int Y, M, D, h, m, sec, frac = 0;
    if (!s || digits(&s, 4, &Y) || *s++ != '-' || digits(&s, 2, &M) || *s++ != '-' ||
        digits(&s, 2, &D) || *s++ != 'T' || digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &m) ||
        *s++ != ':' || digits(&s, 2, &sec))
        return -1;
    if (*s == '.') {
        s++;
        int n = 0;
        while (s[n] >= '0' && s[n] <= '9')
            n++;
        if (n == 0)
            return -1;
        for (int i = 0; i < 3; i++)
            frac = frac * 10 + (i < n ? s[i] - '0' : 0);
        s += n;
    }
    int off = 0;
    if (*s == 'Z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, oh, om;
        if (digits(&s, 2, &oh) || *s++ != ':' || digits(&s, 2, &om) || oh > 23 || om > 59)
            return -1;
        off = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*s || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    struct tm tm = {.tm_year = Y - 1900,
                    .tm_mon = M - 1,
                    .tm_mday = D,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - (int64_t)off * 60) * 1000 + frac;
    return 0;
}

void hearth_datetime_format(int64_t ms, char *out, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}
