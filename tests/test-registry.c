/* test-registry.c: the process-wide registry of live resources.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

typedef struct
{
  gpointer added;        /* compared only, never dereferenced after removal */
  gpointer removed;
  guint    n_added;
  guint    n_removed;
  char    *id_at_removal;
  gboolean found_at_removal;
} Events;

static void
added_cb (ExoRegistry *registry,
          ExoResource *resource,
          gpointer     user_data)
{
  Events *events = user_data;

  g_assert_true (EXO_IS_RESOURCE (resource));
  events->added = resource;
  events->n_added++;
}

static void
removed_cb (ExoRegistry *registry,
            ExoResource *resource,
            gpointer     user_data)
{
  Events *events = user_data;
  g_autoptr(ExoResource) found = NULL;

  g_assert_true (EXO_IS_RESOURCE (resource));
  events->removed = resource;
  events->n_removed++;
  g_free (events->id_at_removal);
  events->id_at_removal = g_strdup (exo_resource_get_id (resource));
  /* By the time the signal runs, the registry no longer hands it out. */
  found = exo_registry_lookup (registry, exo_resource_get_id (resource));
  events->found_at_removal = (found == (gpointer) resource);
}

static gboolean
list_contains (GPtrArray *list,
               gpointer   resource)
{
  return g_ptr_array_find (list, resource, NULL);
}

static void
test_add_lookup_remove (void)
{
  ExoRegistry *registry = exo_registry_get_default ();
  Events events = { 0 };
  guint base = exo_registry_get_size (registry);
  ExoTestResource *resource;
  gulong added_id, removed_id;
  GWeakRef weak;

  g_assert_true (EXO_IS_REGISTRY (registry));
  g_assert_true (registry == exo_registry_get_default ());

  added_id = g_signal_connect (registry, "resource-added", G_CALLBACK (added_cb), &events);
  removed_id = g_signal_connect (registry, "resource-removed", G_CALLBACK (removed_cb), &events);

  resource = exo_test_resource_new ("registry-one");
  g_assert_cmpuint (events.n_added, ==, 1);
  g_assert_true (events.added == (gpointer) resource);
  g_assert_cmpuint (exo_registry_get_size (registry), ==, base + 1);

  /* lookup: transfer full */
  {
    ExoResource *found = exo_registry_lookup (registry, "registry-one");

    g_assert_true (found == EXO_RESOURCE (resource));
    g_assert_cmpuint (G_OBJECT (resource)->ref_count, ==, 2);
    g_object_unref (found);
    g_assert_cmpuint (G_OBJECT (resource)->ref_count, ==, 1);
  }
  g_assert_null (exo_registry_lookup (registry, "registry-none"));

  /* list: every element with a reference */
  {
    g_autoptr(GPtrArray) list = exo_registry_list (registry);

    g_assert_cmpuint (list->len, ==, exo_registry_get_size (registry));
    g_assert_true (list_contains (list, resource));
    g_assert_cmpuint (G_OBJECT (resource)->ref_count, ==, 2);
  }
  g_assert_cmpuint (G_OBJECT (resource)->ref_count, ==, 1);

  /* The registry holds no strong reference: the last unref finalizes. */
  g_weak_ref_init (&weak, resource);
  g_object_unref (resource);
  g_assert_null (g_weak_ref_get (&weak));
  g_weak_ref_clear (&weak);

  g_assert_cmpuint (events.n_removed, ==, 1);
  g_assert_true (events.removed == (gpointer) resource);
  g_assert_cmpstr (events.id_at_removal, ==, "registry-one");
  g_assert_false (events.found_at_removal);
  g_assert_null (exo_registry_lookup (registry, "registry-one"));
  g_assert_cmpuint (exo_registry_get_size (registry), ==, base);
  {
    g_autoptr(GPtrArray) list = exo_registry_list (registry);
    g_assert_cmpuint (list->len, ==, base);
  }

  g_signal_handler_disconnect (registry, added_id);
  g_signal_handler_disconnect (registry, removed_id);
  g_free (events.id_at_removal);
}

static void
test_generated_id (void)
{
  ExoRegistry *registry = exo_registry_get_default ();
  ExoTestResource *a = g_object_new (EXO_TYPE_TEST_RESOURCE, NULL);
  ExoTestResource *b = g_object_new (EXO_TYPE_TEST_RESOURCE, NULL);
  g_autofree char *id_a = g_strdup (exo_resource_get_id (EXO_RESOURCE (a)));
  g_autofree char *id_b = g_strdup (exo_resource_get_id (EXO_RESOURCE (b)));
  ExoResource *found;

  /* a resource made without an id gets a unique one and is registered under it */
  g_assert_nonnull (id_a);
  g_assert_cmpstr (id_a, !=, "");
  g_assert_cmpstr (id_a, !=, id_b);

  found = exo_registry_lookup (registry, id_a);
  g_assert_true (found == EXO_RESOURCE (a));
  g_object_unref (found);
  found = exo_registry_lookup (registry, id_b);
  g_assert_true (found == EXO_RESOURCE (b));
  g_object_unref (found);

  g_object_unref (a);
  g_object_unref (b);
  g_assert_null (exo_registry_lookup (registry, id_a));
  g_assert_null (exo_registry_lookup (registry, id_b));
}

static void
clear_object (gpointer object)
{
  g_clear_object (&object);
}

static void
test_many (void)
{
  ExoRegistry *registry = exo_registry_get_default ();
  guint base = exo_registry_get_size (registry);
  g_autoptr(GPtrArray) resources = g_ptr_array_new_with_free_func (clear_object);

  for (guint i = 0; i < 100; i++)
    {
      g_autofree char *id = g_strdup_printf ("registry-many-%u", i);
      g_ptr_array_add (resources, exo_test_resource_new (id));
    }
  g_assert_cmpuint (exo_registry_get_size (registry), ==, base + 100);

  /* drop the even ones */
  for (guint i = 0; i < 100; i += 2)
    g_clear_object (&resources->pdata[i]);
  g_assert_cmpuint (exo_registry_get_size (registry), ==, base + 50);

  for (guint i = 0; i < 100; i++)
    {
      g_autofree char *id = g_strdup_printf ("registry-many-%u", i);
      g_autoptr(ExoResource) found = exo_registry_lookup (registry, id);

      if (i % 2 == 0)
        g_assert_null (found);
      else
        g_assert_true (found == g_ptr_array_index (resources, i));
    }

  {
    g_autoptr(GPtrArray) list = exo_registry_list (registry);
    g_assert_cmpuint (list->len, ==, base + 50);
    for (guint i = 1; i < 100; i += 2)
      g_assert_true (list_contains (list, g_ptr_array_index (resources, i)));
  }

  g_clear_pointer (&resources, g_ptr_array_unref);
  g_assert_cmpuint (exo_registry_get_size (registry), ==, base);
}

static void
test_same_id (void)
{
  ExoRegistry *registry = exo_registry_get_default ();
  guint base = exo_registry_get_size (registry);
  ExoTestResource *earlier = exo_test_resource_new ("registry-twin");
  ExoTestResource *later = exo_test_resource_new ("registry-twin");
  ExoResource *found;

  g_assert_cmpuint (exo_registry_get_size (registry), ==, base + 2);

  found = exo_registry_lookup (registry, "registry-twin");
  g_assert_true (found == EXO_RESOURCE (later));
  g_object_unref (found);

  {
    g_autoptr(GPtrArray) list = exo_registry_list (registry);
    g_assert_true (list_contains (list, earlier));
    g_assert_true (list_contains (list, later));
  }

  g_object_unref (later);
  g_assert_cmpuint (exo_registry_get_size (registry), ==, base + 1);
  found = exo_registry_lookup (registry, "registry-twin");
  g_assert_true (found == EXO_RESOURCE (earlier));
  g_object_unref (found);

  g_object_unref (earlier);
  g_assert_null (exo_registry_lookup (registry, "registry-twin"));
  g_assert_cmpuint (exo_registry_get_size (registry), ==, base);
}

static void
test_same_id_earlier_goes_first (void)
{
  ExoRegistry *registry = exo_registry_get_default ();
  ExoTestResource *first = exo_test_resource_new ("registry-triplet");
  ExoTestResource *second = exo_test_resource_new ("registry-triplet");
  ExoTestResource *third = exo_test_resource_new ("registry-triplet");
  ExoResource *found;

  /* The earliest goes away (its id string was the table's key): the one
   * registered last is still the one found, and the others stay findable. */
  g_object_unref (first);
  found = exo_registry_lookup (registry, "registry-triplet");
  g_assert_true (found == EXO_RESOURCE (third));
  g_object_unref (found);

  g_object_unref (third);
  found = exo_registry_lookup (registry, "registry-triplet");
  g_assert_true (found == EXO_RESOURCE (second));
  g_object_unref (found);

  g_object_unref (second);
  g_assert_null (exo_registry_lookup (registry, "registry-triplet"));
}

/* Resources made and dropped in worker threads while the main thread reads. */
#define N_THREADS 4
#define N_PER_THREAD 500

static gpointer
churn_thread (gpointer data)
{
  guint n = GPOINTER_TO_UINT (data);

  for (guint i = 0; i < N_PER_THREAD; i++)
    {
      g_autofree char *id = g_strdup_printf ("registry-churn-%u", i % 7);
      ExoTestResource *resource = exo_test_resource_new (id);
      ExoResource *found = exo_registry_lookup (exo_registry_get_default (), id);

      /* something with that id is live: at least this one */
      g_assert_nonnull (found);
      g_object_unref (found);
      g_object_unref (resource);
    }
  return GUINT_TO_POINTER (n);
}

static void
test_threads (void)
{
  ExoRegistry *registry = exo_registry_get_default ();
  guint base = exo_registry_get_size (registry);
  GThread *threads[N_THREADS];

  for (guint i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("churn", churn_thread, GUINT_TO_POINTER (i));

  for (guint round = 0; round < 200; round++)
    {
      g_autoptr(GPtrArray) list = exo_registry_list (registry);
      g_autoptr(ExoResource) found = exo_registry_lookup (registry, "registry-churn-3");

      for (guint i = 0; i < list->len; i++)
        g_assert_true (EXO_IS_RESOURCE (g_ptr_array_index (list, i)));
    }

  for (guint i = 0; i < N_THREADS; i++)
    g_assert_cmpuint (GPOINTER_TO_UINT (g_thread_join (threads[i])), ==, i);

  g_assert_cmpuint (exo_registry_get_size (registry), ==, base);
  for (guint i = 0; i < 7; i++)
    {
      g_autofree char *id = g_strdup_printf ("registry-churn-%u", i);
      g_assert_null (exo_registry_lookup (registry, id));
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/registry/add-lookup-remove", test_add_lookup_remove);
  g_test_add_func ("/exo/registry/generated-id", test_generated_id);
  g_test_add_func ("/exo/registry/many", test_many);
  g_test_add_func ("/exo/registry/same-id", test_same_id);
  g_test_add_func ("/exo/registry/same-id/earliest-goes-first", test_same_id_earlier_goes_first);
  g_test_add_func ("/exo/registry/threads", test_threads);

  return g_test_run ();
}
