/* Unit tests for the container state's reader (src/engine/store.c): the flat record read
 * without jansson must give what jansson's reading gives, and every record it does not read
 * (nested values, \u escapes, non-ASCII bytes, unknown keys) must still be read, by jansson. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/container.h"
#include "tap.h"

static bool
same_str (const char *a, json_t *o, const char *key)
{
  const char *b = json_string_value (json_object_get (o, key));
  return (a == NULL && b == NULL) || (a && b && strcmp (a, b) == 0);
}

/* what state_from_json reads, field by field, against jansson's own tree */
static bool
same_as_jansson (const char *text, const struct ctr_state *st)
{
  json_t *o = json_loads (text, 0, NULL);
  bool ok = o != NULL;
  ok = ok && same_str (st->id, o, "id") && same_str (st->name, o, "name") && same_str (st->image, o, "image")
       && same_str (st->command, o, "command") && same_str (st->entrypoint, o, "entrypoint")
       && same_str (st->error, o, "error");
  ok = ok && st->pid == json_integer_value (json_object_get (o, "pid"))
       && (long long) st->pid_start == json_integer_value (json_object_get (o, "pidStart"))
       && st->monitor_pid == json_integer_value (json_object_get (o, "monitorPid"))
       && (long long) st->monitor_start == json_integer_value (json_object_get (o, "monitorStart"))
       && st->exit_code == json_integer_value (json_object_get (o, "exitCode"))
       && st->created_ns == json_integer_value (json_object_get (o, "created"))
       && st->started_ns == json_integer_value (json_object_get (o, "started"))
       && st->finished_ns == json_integer_value (json_object_get (o, "finished"))
       && st->restart_count == json_integer_value (json_object_get (o, "restartCount"))
       && st->restart_max == json_integer_value (json_object_get (o, "restartMax"))
       && st->log_max_size == json_integer_value (json_object_get (o, "logMaxSize"));
  ok = ok && st->oom_killed == json_is_true (json_object_get (o, "oomKilled"))
       && st->stop_requested == json_is_true (json_object_get (o, "stopRequested"))
       && st->auto_remove == json_is_true (json_object_get (o, "autoRemove"))
       && st->tty == json_is_true (json_object_get (o, "tty"));
  ok = ok && strcmp (ctr_status_name (st->status), json_string_value (json_object_get (o, "status"))) == 0;
  json_decref (o);
  return ok;
}

static void
test_flat (void)
{
  static const char *const good[] = {
    /* as state_json writes it (json_dumps, JSON_COMPACT) */
    "{\"id\":\"0813b78e7af3f60295069c6c70f82783ad6f75e40ba9bc443a99041366f1c6cc\",\"name\":\"web\",\"image\":"
    "\"busybox\",\"command\":\"sh -c \\\"echo hi\\\\n\\\"; sleep 30\\t/x\",\"entrypoint\":null,\"status\":"
    "\"running\",\"pid\":16540,\"pidStart\":1318263,\"monitorPid\":16538,\"monitorStart\":1318259,\"exitCode\":-1,"
    "\"oomKilled\":false,\"error\":null,\"created\":1796234918412345678,\"started\":1796234918884719913,"
    "\"finished\":0,\"restartCount\":2,\"stopRequested\":true,\"restartPolicy\":\"on-failure\",\"restartMax\":3,"
    "\"autoRemove\":true,\"tty\":true,\"logMaxSize\":1048576}",
    /* spaces, fewer keys, a string where a number goes (0, as jansson's reading) */
    " { \"id\" : \"abc\" , \"status\" : \"exited\", \"exitCode\": 137, \"pid\": \"12\", \"name\": 5 }\n",
    /* escapes: \/ \b \f \r */
    "{\"id\":\"a\",\"status\":\"created\",\"command\":\"a\\/b\\bc\\fd\\re\"}",
    /* jansson's: a \u escape, a UTF-8 name, an unknown key, nested volumes */
    "{\"id\":\"a\",\"status\":\"created\",\"name\":\"caf\\u00e9\"}",
    "{\"id\":\"a\",\"status\":\"created\",\"name\":\"caf\xc3\xa9\"}",
    "{\"id\":\"a\",\"status\":\"created\",\"someday\":1}",
    "{\"id\":\"a\",\"status\":\"exited\",\"volumes\":[{\"name\":\"v\",\"target\":\"/d\",\"readonly\":false,"
    "\"anonymous\":true}]}",
    "{\"id\":\"a\",\"status\":\"exited\",\"exitCode\":1.0}",
  };
  static const char *const bad[] = {
    "{\"id\":\"a\",\"status\":\"sleeping\"}",  /* no such status */
    "{\"status\":\"created\"}",                /* no id */
    "{\"id\":\"a\",\"status\":\"created\"",    /* cut short */
    "{\"id\":\"a\",\"status\":\"created\"} x", /* trailing bytes */
    "",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    {
      struct ctr_state st;
      int r = ctr_state_parse (good[i], strlen (good[i]), &st);
      CHECK (r == 0 && same_as_jansson (good[i], &st), "state %zu reads as jansson reads it", i);
      ctr_state_clear (&st);
    }
  {
    struct ctr_state st;
    CHECK (ctr_state_parse (good[0], strlen (good[0]), &st) == 0 && st.restart == RESTART_ON_FAILURE
               && strcmp (st.command, "sh -c \"echo hi\\n\"; sleep 30\t/x") == 0
               && st.started_ns == 1796234918884719913LL,
           "the record as written: policy, escapes, nanoseconds");
    ctr_state_clear (&st);
    CHECK (ctr_state_parse (good[6], strlen (good[6]), &st) == 0 && st.nvolumes == 1 && st.volumes[0].anonymous,
           "a nested record still reads (volumes)");
    ctr_state_clear (&st);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      struct ctr_state st;
      CHECK (ctr_state_parse (bad[i], strlen (bad[i]), &st) < 0 && st.id == NULL, "damaged state %zu is refused", i);
    }
}

int
main (void)
{
  test_flat ();
  return tap_done ();
}
