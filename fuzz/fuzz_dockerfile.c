/* A Containerfile (src/image/dockerfile.c), its words' expansion (dockerfile_expand.c) and a
 * .dockerignore (dockerignore.c): `cella build` reads them from a build context the user may
 * have been handed. What parses must hold its promises: each stage starts with its FROM, lines
 * only grow, a stage is found by its name and index; every word expands or fails cleanly. */
#include "fuzz.h"

#include "image/dockerfile.h"

static const char *
lookup (const char *name, void *ud)
{
  (void) ud;
  return name[0] == 'E' ? "" : name[0] == 'S' ? "a b" : name[0] == 'U' ? NULL : "v";
}

static void
expand_all (char **args, char escape)
{
  cella_error_t err = NULL;
  for (size_t i = 0; args && args[i]; i++)
    {
      char *out = NULL;
      char **words = NULL;
      if (df_expand (args[i], escape, lookup, NULL, &out, &err) == 0)
        FUZZ_CHECK (out != NULL, "df_expand succeeded without a result");
      cella_error_free (&err);
      free (out);
      if (df_expand_words (args[i], escape, lookup, NULL, &words, &err) == 0)
        for (size_t j = 0; words[j]; j++)
          FUZZ_CHECK (words[j][0] != '\0', "an empty word from \"%s\"", args[i]);
      cella_error_free (&err);
      strv_free (words);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct dockerfile df;
  cella_error_t err = NULL;
  struct df_ignore *ig = NULL;
  if (df_parse ((const char *) data, size, "fuzz", &df, &err) == 0)
    {
      int last = 0;
      FUZZ_CHECK (df.n_stages > 0, "parsed without a stage");
      for (size_t i = 0; i < df.n_stages; i++)
        {
          const struct df_stage *st = &df.stages[i];
          char idx[24];
          FUZZ_CHECK (st->from == &st->instrs[0] && st->from->kind == DF_FROM && st->base, "stage %zu: no FROM", i);
          snprintf (idx, sizeof idx, "%zu", i);
          FUZZ_CHECK (df_stage_find (&df, st->name ? st->name : idx) == st, "stage %zu not found by name/index", i);
          for (size_t j = 0; j < st->n_instrs; j++)
            {
              const struct df_instr *in = &st->instrs[j];
              FUZZ_CHECK (in->line > last && in->args && in->text, "instruction at line %d after %d", in->line, last);
              last = in->line;
              if (in->kind != DF_ARG && in->kind != DF_ENV && in->kind != DF_LABEL)
                expand_all (in->args, df.escape);
            }
        }
      dockerfile_free (&df);
    }
  cella_error_free (&err);
  if (df_ignore_parse ((const char *) data, size, &ig, &err) == 0)
    {
      (void) df_ignore_match (ig, "a/b/c.go");
      (void) df_ignore_may_except (ig, "a");
      df_ignore_free (ig);
    }
  cella_error_free (&err);
  return 0;
}
