/* before-after.h: what the parts of the before/after example share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One program, three roles (before-after.c picks one from argv): the
 * orchestrator (runs the fault schedule, the proxies and the service, and
 * prints the table), the service (service.c, `--serve`), and a client process
 * that drives one client with the workload (workload.c, `--client`).  Each
 * process is single-threaded: everything here runs in the global default main
 * context, and nothing is locked.
 */
#pragma once

#include <gio/gio.h>

/* --- service.c: the line service (`--serve PORT`) ------------------------- */

/* Listens on 127.0.0.1:@port (0 = any), prints the port it got on stdout and
 * answers `ECHO <word>` with `OK <word>` until killed. */
int service_main (guint16 port);

/* --- workload.c: one client under the workload (`--client …`) ------------- */

/* Drives the client @which ("before" or "after") at @address with one call
 * every @interval_ms for @duration_ms, then closes it and prints one line,
 * `RESULT key=value …`, on stdout. */
int workload_main (const char *which,
                   const char *address,
                   guint       duration_ms,
                   guint       interval_ms,
                   guint32     seed);

/* The number of file descriptors open in this process, -1 when unknown. */
int count_open_fds (void);

/* --- proxy.c: the fault-injecting TCP proxy ------------------------------ */

typedef struct _FaultProxy FaultProxy;

FaultProxy *fault_proxy_new          (guint16      upstream_port,
                                      GError     **error);
guint16     fault_proxy_get_port     (FaultProxy  *proxy);
void        fault_proxy_set_delay    (FaultProxy  *proxy,
                                      guint        delay_ms);
void        fault_proxy_reset_next   (FaultProxy  *proxy,
                                      guint        n_requests);
gboolean    fault_proxy_set_refusing (FaultProxy  *proxy,
                                      gboolean     refusing,
                                      GError     **error);
guint       fault_proxy_get_accepted (FaultProxy  *proxy);
guint       fault_proxy_get_resets   (FaultProxy  *proxy);
void        fault_proxy_free         (FaultProxy  *proxy);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FaultProxy, fault_proxy_free)

/* --- schedule.c: the fault schedule -------------------------------------- */

typedef enum {
  FAULT_KILL,      /* SIGKILL the service, start it again after length_ms */
  FAULT_RESET,     /* the next `amount` requests through each proxy get an RST */
  FAULT_LATENCY,   /* hold every chunk `amount` ms, each way, for length_ms */
  FAULT_REFUSE,    /* the proxies drop their connections and refuse for length_ms */
  N_FAULT_KINDS
} FaultKind;

#define FAULT_KINDS_ALL ((1u << N_FAULT_KINDS) - 1)

typedef struct {
  FaultKind kind;
  guint     at_ms;       /* since the clients started */
  guint     length_ms;
  guint     amount;
} Fault;

GArray     *fault_schedule_new   (guint32       seed,
                                  guint         duration_ms,
                                  guint         every_ms,
                                  guint         kinds);
gboolean    fault_kinds_parse    (const char   *list,
                                  guint        *kinds,
                                  GError      **error);
const char *fault_kind_to_string (FaultKind     kind);
char       *fault_describe       (const Fault  *fault);
