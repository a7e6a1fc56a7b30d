/*
 * test_clock: the per-turn cache of the monotonic clock on a real
 * event_base. Within one turn every reading is the same however long the
 * turn's callbacks take; the next turn reads anew; a thread that never
 * asked (or stopped asking) reads the clock each time; readings never go
 * back across turns.
 */
#include <stdint.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <event2/event.h>

#include "clock.h"
#include "testloop.h"

void test_register(void);

static void sleep_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

struct turn {
    uint64_t first, second;
};

/* Two readings 5 ms apart inside one callback. */
static void read_twice(void *arg)
{
    struct turn *t = arg;
    t->first = clock_us();
    sleep_ms(5);
    t->second = clock_us();
}

static void test_uncached_without_loop(void)
{
    struct turn t;
    read_twice(&t);
    CU_ASSERT(t.second >= t.first + 4000);
    CU_ASSERT(clock_ms() >= t.second / 1000);
}

static void test_one_turn_one_reading(void)
{
    struct event_base *base = event_base_new();
    CU_ASSERT_FATAL(base != NULL);
    CU_ASSERT_FATAL(clock_turns_begin(base) == 0);
    struct turn a, b;
    testloop_turn(base, read_twice, &a);
    CU_ASSERT_EQUAL(a.first, a.second);  /* cached for the turn */
    testloop_turn(base, read_twice, &b);
    CU_ASSERT(b.first >= a.second + 4000);  /* the next turn reads anew */
    CU_ASSERT_EQUAL(b.first, b.second);
    CU_ASSERT(clock_ms() >= (b.first + 4000) / 1000);  /* the turn's end forgot it */
    clock_turns_end();
    struct turn c;
    read_twice(&c);
    CU_ASSERT(c.second >= c.first + 4000);  /* uncached once ended */
    CU_ASSERT(c.first >= b.second);
    event_base_free(base);
}

/* A reading outside any callback (before the loop runs) must not stick:
 * the turn that follows forgets it. */
static void test_reading_before_loop_expires(void)
{
    struct event_base *base = event_base_new();
    CU_ASSERT_FATAL(base != NULL);
    CU_ASSERT_FATAL(clock_turns_begin(base) == 0);
    uint64_t before = clock_us();
    sleep_ms(5);
    struct turn t;
    testloop_turn(base, read_twice, &t);
    CU_ASSERT(t.first >= before + 4000);
    clock_turns_end();
    event_base_free(base);
}

void test_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"uncached without a loop", test_uncached_without_loop},
        {"one reading per turn", test_one_turn_one_reading},
        {"a reading before the loop expires", test_reading_before_loop_expires},
    };
    CU_pSuite s = CU_add_suite("clock", NULL, NULL);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        CU_add_test(s, tests[i].name, tests[i].fn);
}
