/* Unit tests for health checks' pure parts: docker durations, the configuration from the image
 * and the command line, and the state record's round trip. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "engine/container.h"
#include "engine/health.h"
#include "tap.h"
#include "errcheck.h"

#define MS 1000000LL
#define S 1000000000LL

static void
test_durations (void)
{
  static const struct {
    const char *s;
    long long ns;
  } cases[] = {
    { "0", 0 },
    { "500ms", 500 * MS },
    { "2s", 2 * S },
    { "1m30s", 90 * S },
    { "1.5s", 1500 * MS },
    { "1h", 3600 * S },
    { "250us", 250000 },
    { "7ns", 7 },
    { "2m", 120 * S },
    { ".5s", 500 * MS },
    { "", -1 },
    { "5", -1 },
    { "5x", -1 },
    { "-1s", -1 },
    { "s", -1 },
    { "1s2", -1 },
    { "99999999999h", -1 },
  };
  char buf[32];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      long long got = health_parse_duration (cases[i].s);
      CHECK (got == cases[i].ns, "duration `%s` -> %lld (got %lld)", cases[i].s, cases[i].ns, got);
    }
  health_format_duration (300 * MS, buf, sizeof buf);
  CHECK_STR (buf, "300ms", "format 300ms");
  health_format_duration (30 * S, buf, sizeof buf);
  CHECK_STR (buf, "30s", "format 30s");
  health_format_duration (1500 * MS, buf, sizeof buf);
  CHECK_STR (buf, "1.5s", "format 1.5s");
}

static void
test_config (void)
{
  cella_error_t err = NULL;
  struct ctr_healthcheck hc;
  char *img_test[] = { (char *) "CMD", (char *) "/bin/check", (char *) "--quick", NULL };
  char *none_test[] = { (char *) "NONE", NULL };
  struct ctr_healthcheck image = { .test = img_test, .interval_ns = 200 * MS, .retries = 2 };
  struct health_options o = { 0 };

  CHECK (health_config (&o, NULL, &hc, &err) == 0 && hc.test == NULL, "no options, no image: no check");
  ctr_healthcheck_clear (&hc);

  o.cmd = "curl -f localhost";
  CHECK (health_config (&o, NULL, &hc, &err) == 0 && hc.test && strcmp (hc.test[0], "CMD-SHELL") == 0
             && strcmp (hc.test[1], "curl -f localhost") == 0 && hc.test[2] == NULL,
         "--health-cmd: CMD-SHELL");
  CHECK (hc.interval_ns == 30 * S && hc.timeout_ns == 30 * S && hc.retries == 3 && hc.start_period_ns == 0
             && hc.on_failure == HEALTH_ACT_NONE,
         "docker's defaults");
  ctr_healthcheck_clear (&hc);

  memset (&o, 0, sizeof o);
  CHECK (health_config (&o, &image, &hc, &err) == 0 && hc.test && strcmp (hc.test[1], "/bin/check") == 0
             && hc.interval_ns == 200 * MS && hc.retries == 2 && hc.timeout_ns == 30 * S,
         "the image's check, its values, defaults for the rest");
  ctr_healthcheck_clear (&hc);

  o.retries = "5";
  o.timeout = "1s";
  o.on_failure = "restart";
  CHECK (health_config (&o, &image, &hc, &err) == 0 && hc.retries == 5 && hc.timeout_ns == S
             && hc.interval_ns == 200 * MS && hc.on_failure == HEALTH_ACT_RESTART,
         "options over the image's");
  ctr_healthcheck_clear (&hc);

  memset (&o, 0, sizeof o);
  o.none = true;
  CHECK (health_config (&o, &image, &hc, &err) == 0 && hc.test == NULL, "--no-healthcheck drops the image's");
  ctr_healthcheck_clear (&hc);

  memset (&o, 0, sizeof o);
  image.test = none_test;
  CHECK (health_config (&o, &image, &hc, &err) == 0 && hc.test == NULL, "Test NONE: no check");
  ctr_healthcheck_clear (&hc);

  o.interval = "10q";
  o.cmd = "true";
  CHECK (health_config (&o, NULL, &hc, &err) < 0 && err_has (&err, "--health-interval `10q`"), "bad duration");
  ctr_healthcheck_clear (&hc);
  o.interval = NULL;
  o.on_failure = "stop-the-world";
  CHECK (health_config (&o, NULL, &hc, &err) < 0 && err_has (&err, "--health-on-failure `stop-the-world`"),
         "bad action");
  ctr_healthcheck_clear (&hc);
  memset (&o, 0, sizeof o);
  o.retries = "3";
  CHECK (health_config (&o, NULL, &hc, &err) < 0 && err_has (&err, "give --health-cmd"), "options without a check");
  ctr_healthcheck_clear (&hc);
  o.cmd = "true";
  o.none = true;
  CHECK (health_config (&o, NULL, &hc, &err) < 0 && err_has (&err, "conflict"), "--no-healthcheck with --health-cmd");
  ctr_healthcheck_clear (&hc);
}

static void
test_state_round_trip (void)
{
  const char *text
      = "{\"id\":\"ab\",\"status\":\"running\",\"restartPolicy\":\"no\",\"exitCode\":-1,"
        "\"healthcheck\":{\"test\":[\"CMD-SHELL\",\"true\"],\"interval\":100,\"timeout\":200,\"startPeriod\":0,"
        "\"retries\":2,\"onFailure\":\"kill\"},"
        "\"health\":{\"status\":\"unhealthy\",\"failingStreak\":4,\"log\":["
        "{\"start\":1,\"end\":2,\"exitCode\":1,\"output\":\"a\"},{\"start\":3,\"end\":4,\"exitCode\":1,\"output\":\"b\"},"
        "{\"start\":5,\"end\":6,\"exitCode\":1},7,{\"output\":5},{\"start\":9},{\"start\":10}]}}";
  struct ctr_state st;
  CHECK (ctr_state_parse (text, strlen (text), &st) == 0, "a state with health parses");
  CHECK (st.hc.test && strcmp (st.hc.test[1], "true") == 0 && st.hc.interval_ns == 100 && st.hc.retries == 2
             && st.hc.on_failure == HEALTH_ACT_KILL,
         "the check");
  CHECK (st.health == HEALTH_UNHEALTHY && st.failing_streak == 4, "status and streak");
  CHECK (st.health_nlog == HEALTH_LOG_MAX, "at most %d results kept (got %d)", HEALTH_LOG_MAX, st.health_nlog);
  CHECK_STR (st.health_log[1].output, "b", "a result's output");
  CHECK (st.health_log[2].output == NULL && st.health_log[3].start_ns == 0, "odd entries read as empty");
  ctr_state_clear (&st);
  {
    const char *plain = "{\"id\":\"ab\",\"status\":\"exited\",\"healthcheck\":{\"test\":[]},\"health\":7}";
    CHECK (ctr_state_parse (plain, strlen (plain), &st) == 0 && st.hc.test == NULL && st.health == HEALTH_NONE,
           "an empty test is no check");
    ctr_state_clear (&st);
  }
}

int
main (void)
{
  test_durations ();
  test_config ();
  test_state_round_trip ();
  return tap_done ();
}
