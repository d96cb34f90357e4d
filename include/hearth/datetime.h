/* XEP-0082 date-times (CCYY-MM-DDThh:mm:ss[.sss]TZD), as <delay/> stamps, archive queries and
 * room history carry them: the one parser and formatter of the tree. */
#ifndef HEARTH_DATETIME_H
#define HEARTH_DATETIME_H

#include <stddef.h>
#include <stdint.h>

/* Enough for what hearth_datetime_format writes ("2002-09-10T23:08:25.123Z" and its NUL). */
#define HEARTH_DATETIME_MAX 32

/* s (fractions of any length, TZD 'Z' or +/-hh:mm) to milliseconds since 1970 in *ms: 0, or -1
 * when malformed (nothing else accepted around it). */
int hearth_datetime_parse(const char *s, int64_t *ms);
/* ms since 1970 as CCYY-MM-DDThh:mm:ss.sssZ into out (size at least HEARTH_DATETIME_MAX). */
void hearth_datetime_format(int64_t ms, char *out, size_t size);

#endif
