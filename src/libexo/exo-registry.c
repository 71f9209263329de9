/* exo-registry.c: the live resources of a process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: the process-wide ExoRegistry (exo_registry_get_default()), its table
 * of every ExoResource between constructed and dispose, by id (several
 * resources may share an id: lookup gives the newest), and its signals
 * ::resource-added and ::resource-removed.
 *
 * Rules: any thread.  The GMutex guards by_id and size, and nothing else
 * here; every function takes it and releases it before it returns or emits,
 * so a signal handler may call anything of the registry.  _exo_registry_add()
 * and _exo_registry_remove() run from ExoResource's constructed and dispose,
 * so the signals are emitted on whichever thread makes or drops a resource,
 * not in any main context: a handler that touches main-context state must
 * hand over itself (g_main_context_invoke()).  ::resource-removed comes
 * during dispose: the handler must not keep a reference.  lookup and list
 * hand out references only to resources whose ref_count is still above 0
 * (one finalizing on another thread stays in the table until its dispose
 * removes it).
 */
#include "exo-private.h"

/**
 * ExoRegistry:
 *
 * Every #ExoResource registers itself when it is made and unregisters when
 * it is disposed.  The registry holds no references: it is how a daemon or
 * a monitor finds the resources that exist now.  Its signals are emitted in
 * the thread that made or disposed the resource.
 */

struct _ExoRegistry
{
  GObject     parent_instance;

  GMutex      lock;
  GHashTable *by_id;     /* a set of entries (below), by id */
  guint       size;
};

/* An entry is the resource itself when it is the only one with its id (as
 * nearly all are: no allocation per resource), or a GPtrArray of them, in
 * the order registered, tagged with the low bit.  The table is a set of
 * entries hashed by their id (a table of id -> entry would keep a second
 * array of pointers, 8 bytes a bucket); an id is looked up with an IdKey,
 * told from a resource by its first word (a resource's is its class). */
#define ENTRY_IS_LIST(e)   ((GPOINTER_TO_SIZE (e) & 1) != 0)
#define ENTRY_LIST(e)      ((GPtrArray *) (gpointer) (GPOINTER_TO_SIZE (e) & ~(gsize) 1))
#define LIST_ENTRY(list)   ((gpointer) (GPOINTER_TO_SIZE (list) | 1))

typedef struct
{
  gconstpointer  tag;       /* &id_key_tag */
  const char    *id;
} IdKey;

static const char id_key_tag = 0;

static void
entry_free (gpointer entry)
{
  if (ENTRY_IS_LIST (entry))
    g_ptr_array_unref (ENTRY_LIST (entry));
}

static const char *
entry_id (gconstpointer entry)
{
  if (ENTRY_IS_LIST (entry))
    return exo_resource_get_id (g_ptr_array_index (ENTRY_LIST (entry), 0));
  if (((const IdKey *) entry)->tag == &id_key_tag)
    return ((const IdKey *) entry)->id;
  return exo_resource_get_id ((ExoResource *) entry);
}

static guint
entry_hash (gconstpointer entry)
{
  return g_str_hash (entry_id (entry));
}

static gboolean
entry_equal (gconstpointer a,
             gconstpointer b)
{
  return g_str_equal (entry_id (a), entry_id (b));
}

static gpointer
lookup_entry (ExoRegistry *self,
              const char  *id)
{
  IdKey key = { &id_key_tag, id };

  return g_hash_table_lookup (self->by_id, &key);
}

/* The resources of @entry: *n_out of them. */
static ExoResource **
entry_resources (gpointer *entry,
                 guint    *n_out)
{
  if (ENTRY_IS_LIST (*entry))
    {
      GPtrArray *list = ENTRY_LIST (*entry);

      *n_out = list->len;
      return (ExoResource **) list->pdata;
    }
  *n_out = 1;
  return (ExoResource **) entry;
}

enum {
  RESOURCE_ADDED,
  RESOURCE_REMOVED,
  N_SIGNALS,
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (ExoRegistry, exo_registry, G_TYPE_OBJECT)

static void
exo_registry_finalize (GObject *object)
{
  ExoRegistry *self = EXO_REGISTRY (object);

  g_clear_pointer (&self->by_id, g_hash_table_unref);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (exo_registry_parent_class)->finalize (object);
}

static void
exo_registry_class_init (ExoRegistryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = exo_registry_finalize;

  /**
   * ExoRegistry::resource-added:
   * @self: the registry
   * @resource: the resource just made
   */
  signals[RESOURCE_ADDED] =
    g_signal_new ("resource-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, EXO_TYPE_RESOURCE);
  /**
   * ExoRegistry::resource-removed:
   * @self: the registry
   * @resource: the resource being disposed (do not keep a reference)
   */
  signals[RESOURCE_REMOVED] =
    g_signal_new ("resource-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, EXO_TYPE_RESOURCE);
}

static void
exo_registry_init (ExoRegistry *self)
{
  g_mutex_init (&self->lock);
  self->by_id = g_hash_table_new_full (entry_hash, entry_equal, entry_free, NULL);
}

/**
 * exo_registry_get_default:
 *
 * Returns: (transfer none): the process-wide registry
 */
ExoRegistry *
exo_registry_get_default (void)
{
  static ExoRegistry *instance;

  if (g_once_init_enter (&instance))
    g_once_init_leave (&instance, g_object_new (EXO_TYPE_REGISTRY, NULL));

  return instance;
}

void
_exo_registry_add (ExoResource *resource)
{
  ExoRegistry *self = exo_registry_get_default ();
  const char *id = exo_resource_get_id (resource);
  gpointer entry;
  gboolean notify;

  g_mutex_lock (&self->lock);
  entry = lookup_entry (self, id);
  if (entry == NULL)
    g_hash_table_add (self->by_id, resource);
  else if (ENTRY_IS_LIST (entry))
    g_ptr_array_add (ENTRY_LIST (entry), resource);
  else
    {
      GPtrArray *list = g_ptr_array_new ();

      g_ptr_array_add (list, entry);
      g_ptr_array_add (list, resource);
      /* replaces the entry of that id */
      g_hash_table_add (self->by_id, LIST_ENTRY (list));
    }
  self->size++;
  notify = g_signal_has_handler_pending (self, signals[RESOURCE_ADDED], 0, FALSE);
  g_mutex_unlock (&self->lock);

  if (notify)
    g_signal_emit (self, signals[RESOURCE_ADDED], 0, resource);
}

void
_exo_registry_remove (ExoResource *resource)
{
  ExoRegistry *self = exo_registry_get_default ();
  const char *id = exo_resource_get_id (resource);
  gpointer entry;
  gboolean found = FALSE;

  g_mutex_lock (&self->lock);
  entry = lookup_entry (self, id);
  if (entry == resource)
    {
      found = TRUE;
      self->size--;
      g_hash_table_remove (self->by_id, resource);
    }
  else if (entry != NULL && ENTRY_IS_LIST (entry) && g_ptr_array_remove (ENTRY_LIST (entry), resource))
    {
      GPtrArray *list = ENTRY_LIST (entry);

      found = TRUE;
      self->size--;
      /* the last one left is an entry by itself (replacing the list frees it) */
      if (list->len == 1)
        g_hash_table_add (self->by_id, g_ptr_array_index (list, 0));
    }
  g_mutex_unlock (&self->lock);

  if (found)
    g_signal_emit (self, signals[RESOURCE_REMOVED], 0, resource);
}

/**
 * exo_registry_lookup:
 * @self: the registry
 * @id: a resource id
 *
 * When several live resources share @id (several nodes in one process),
 * the one registered last is returned.
 *
 * Returns: (transfer full) (nullable): the resource, or %NULL
 */
ExoResource *
exo_registry_lookup (ExoRegistry *self,
                     const char  *id)
{
  ExoResource *resource = NULL;
  gpointer entry;

  g_return_val_if_fail (EXO_IS_REGISTRY (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  g_mutex_lock (&self->lock);
  entry = lookup_entry (self, id);
  if (entry != NULL)
    {
      guint n;
      ExoResource **resources = entry_resources (&entry, &n);

      resource = resources[n - 1];
      /* It may be finalizing in another thread; only hand out a live one. */
      if (G_OBJECT (resource)->ref_count > 0)
        g_object_ref (resource);
      else
        resource = NULL;
    }
  g_mutex_unlock (&self->lock);

  return resource;
}

/**
 * exo_registry_list:
 * @self: the registry
 *
 * Returns: (transfer full) (element-type ExoResource): the live resources,
 *   each with a reference
 */
GPtrArray *
exo_registry_list (ExoRegistry *self)
{
  GPtrArray *all;
  GHashTableIter iter;
  gpointer entry;

  g_return_val_if_fail (EXO_IS_REGISTRY (self), NULL);

  all = g_ptr_array_new_with_free_func (g_object_unref);
  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->by_id);
  while (g_hash_table_iter_next (&iter, NULL, &entry))
    {
      guint n;
      ExoResource **resources = entry_resources (&entry, &n);

      for (guint i = 0; i < n; i++)
        {
          GObject *object = G_OBJECT (resources[i]);
          if (object->ref_count > 0)
            g_ptr_array_add (all, g_object_ref (object));
        }
    }
  g_mutex_unlock (&self->lock);

  return all;
}

guint
exo_registry_get_size (ExoRegistry *self)
{
  guint size;

  g_return_val_if_fail (EXO_IS_REGISTRY (self), 0);

  g_mutex_lock (&self->lock);
  size = self->size;
  g_mutex_unlock (&self->lock);
  return size;
}
