/* pipeline-test-util.h: what the resource-pipeline tests share — a scratch
 * folder per case, and the program run as a child process
 * (pipeline-test-util.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Main thread only; the waits iterate the thread-default main context.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* how long a run of the program may take before it is killed as hung */
#define PIPELINE_TEST_TIMEOUT_MS 30000

#define FIGURE(report, key) json_object_get_int_member (report, key)

typedef struct
{
  char *tmpdir;
  char *workdir;   /* tmpdir/work, the program's --workdir */
  char *report;    /* tmpdir/report.json, its --report */
} PipelineFixture;

void         pipeline_fixture_setup            (PipelineFixture   *f,
                                                gconstpointer      data);
void         pipeline_fixture_teardown         (PipelineFixture   *f,
                                                gconstpointer      data);

const char  *pipeline_test_example             (void);
void         pipeline_test_store_result        (GObject           *source,
                                                GAsyncResult      *result,
                                                gpointer           user_data);

int          pipeline_test_run                 (PipelineFixture   *f,
                                                char             **out,
                                                char             **err,
                                                const char        *first_option,
                                                ...) G_GNUC_NULL_TERMINATED;
int          pipeline_test_finish              (GSubprocess       *proc,
                                                char             **out,
                                                char             **err);
GSubprocess *pipeline_test_spawn               (PipelineFixture   *f,
                                                const char        *first_option,
                                                ...) G_GNUC_NULL_TERMINATED;
gboolean     pipeline_test_read_until          (GDataInputStream  *lines,
                                                GString           *all,
                                                const char        *needle);
int          pipeline_test_read_to_end         (GSubprocess       *proc,
                                                GDataInputStream  *lines,
                                                GString           *all);

JsonObject  *pipeline_test_load_report         (PipelineFixture   *f);
void         pipeline_test_assert_nothing_left (JsonObject        *report,
                                                const char        *out);
void         pipeline_test_count_output        (PipelineFixture   *f,
                                                guint             *files,
                                                guint             *lines);

G_END_DECLS
