/* schedule.c: the fault schedule, made from a seed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * fault_schedule_new() draws every number from one GRand seeded with the
 * seed, in a fixed order: the same seed, duration, interval and kinds give
 * the same schedule.  Faults never overlap; the kinds come in rounds (each
 * enabled kind once per round, in a shuffled order), so a run with as many
 * faults as kinds sees each kind.  Pure functions, no state.
 */
#include "before-after.h"

#define WARMUP_MS 500   /* before the first fault */
#define TAIL_MS   1000  /* after the last one ends: time to recover */

static const char *const kind_names[N_FAULT_KINDS] = {
  [FAULT_KILL] = "kill",
  [FAULT_RESET] = "reset",
  [FAULT_LATENCY] = "latency",
  [FAULT_REFUSE] = "refuse",
};

const char *
fault_kind_to_string (FaultKind kind)
{
  return kind < N_FAULT_KINDS ? kind_names[kind] : "?";
}

/* "kill,reset" → a mask of (1 << kind); "all" is every kind. */
gboolean
fault_kinds_parse (const char  *list,
                   guint       *kinds,
                   GError     **error)
{
  g_auto(GStrv) names = g_strsplit (list, ",", -1);

  *kinds = 0;
  for (guint i = 0; names[i] != NULL; i++)
    {
      const char *name = g_strstrip (names[i]);
      guint kind;

      if (g_str_equal (name, "all"))
        {
          *kinds = FAULT_KINDS_ALL;
          continue;
        }
      for (kind = 0; kind < N_FAULT_KINDS; kind++)
        if (g_str_equal (name, kind_names[kind]))
          break;
      if (kind == N_FAULT_KINDS)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "unknown fault '%s' (kill, reset, latency, refuse or all)", name);
          return FALSE;
        }
      *kinds |= 1u << kind;
    }
  if (*kinds == 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "no fault named in '%s'", list);
      return FALSE;
    }
  return TRUE;
}

/* Returns: (element-type Fault): the faults, by time. */
GArray *
fault_schedule_new (guint32 seed,
                    guint   duration_ms,
                    guint   every_ms,
                    guint   kinds)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
  GArray *faults = g_array_new (FALSE, FALSE, sizeof (Fault));
  FaultKind round[N_FAULT_KINDS];
  guint n_round = 0, next = 0;
  guint64 t = WARMUP_MS;

  g_return_val_if_fail (every_ms >= 2 && (kinds & FAULT_KINDS_ALL) != 0, faults);

  for (;;)
    {
      Fault fault = { 0, };

      if (next == n_round)
        {
          n_round = next = 0;
          for (FaultKind kind = 0; kind < N_FAULT_KINDS; kind++)
            if (kinds & (1u << kind))
              round[n_round++] = kind;
          for (guint i = n_round - 1; i > 0; i--)   /* Fisher-Yates */
            {
              guint j = g_rand_int_range (rand, 0, i + 1);
              FaultKind swap = round[i];

              round[i] = round[j];
              round[j] = swap;
            }
        }
      fault.kind = round[next++];
      t += g_rand_int_range (rand, every_ms / 2, every_ms + every_ms / 2 + 1);
      fault.at_ms = MIN (t, G_MAXUINT);
      switch (fault.kind)
        {
        case FAULT_KILL:
        case FAULT_REFUSE:
          fault.length_ms = g_rand_int_range (rand, 300, 1501);
          break;
        case FAULT_RESET:
          fault.amount = g_rand_int_range (rand, 1, 4);
          break;
        case FAULT_LATENCY:
          fault.length_ms = g_rand_int_range (rand, 500, 2001);
          fault.amount = g_rand_int_range (rand, 50, 601);
          break;
        case N_FAULT_KINDS:
        default:
          g_assert_not_reached ();
        }
      if (t + fault.length_ms + TAIL_MS > duration_ms)
        break;
      g_array_append_val (faults, fault);
      t += fault.length_ms;
    }
  return faults;
}

char *
fault_describe (const Fault *fault)
{
  switch (fault->kind)
    {
    case FAULT_KILL:
      return g_strdup_printf ("the service is killed (SIGKILL) and started again after %u ms",
                              fault->length_ms);
    case FAULT_RESET:
      return g_strdup_printf ("the next %u request%s through each proxy get%s an RST",
                              fault->amount, fault->amount == 1 ? "" : "s",
                              fault->amount == 1 ? "s" : "");
    case FAULT_LATENCY:
      return g_strdup_printf ("every chunk is held %u ms each way, for %u ms",
                              fault->amount, fault->length_ms);
    case FAULT_REFUSE:
      return g_strdup_printf ("the proxies close their connections and refuse connects for %u ms",
                              fault->length_ms);
    case N_FAULT_KINDS:
    default:
      return g_strdup ("?");
    }
}
