/* exo-python-loader.c: the Python loader module (libexo-python-loader.so).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns the embedded CPython interpreter of a program that loads Python
 * plugins, and the import of one plugin file: exo_python_loader_import2(),
 * the only exported function, called by libexo (exo-plugin-python.c), which
 * dlopens this module the first time it meets a Python plugin.  The
 * interface is src/libexo/exo-plugin-python.h.
 *
 * The interpreter is started on the first import (unless the host process
 * is Python itself): no signal handlers (the daemon's own stay), no
 * argv, the environment read as usual (PYTHONPATH).  Then the GIL is
 * released, and taken again around every import; PyGObject takes it itself
 * when C calls a Python vfunc, so Python code runs on whatever thread calls
 * it: for exo-node, its main context.  The interpreter is never finalized:
 * the plugins' GTypes stay registered, like a shared object's.
 *
 * A single-file plugin's folder is on sys.path (last) while the plugin is
 * imported, so that it can import helper modules beside it; they are read
 * by the same loader and checks.
 *
 * What PyGObject prints (an exception in a plugin's GLib callback or in a
 * vfunc without a guard) reaches sys.excepthook, which the helper sets to
 * the overrides' report_exception(): GLib's log, through the program's
 * writer and its rate limit, with EXO_RESOURCE_ID where a resource raised.
 *
 * Bytecode: the plugins' modules (the plugin, a package's modules) are
 * compiled from their source by the helper's own loader every time, which
 * never reads nor writes `__pycache__` beside a plugin (a planted `.pyc`
 * would otherwise run instead of the checked source), and refuses a module
 * file or folder that anyone but root or us may change; and nothing of the
 * interpreter writes bytecode (sys.dont_write_bytecode).
 *
 * The Python half of an import (HELPER below) makes the module, reads and
 * checks its EXO_PLUGIN declaration and never raises: it returns either
 * (code, message) or the declaration.  Everything a plugin gives is checked
 * and bounded there (types of the values, lengths, the number of types);
 * libexo then checks the ABI, names and types as for a shared object.
 *
 * Rules: libexo calls the import function under its python_loader lock,
 * one at a time.  No Python object outlives a call but the helper's
 * function (and the plugin modules, kept in sys.modules).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <exo/exo.h>
#include "exo-plugin-python.h"

#ifndef EXO_TYPELIB_DIR
# define EXO_TYPELIB_DIR ""
#endif
#ifndef EXO_PYTHON_OVERRIDES_DIR
# define EXO_PYTHON_OVERRIDES_DIR ""
#endif

G_MODULE_EXPORT gboolean exo_python_loader_import2 (const char               *real_path,
                                                    const char               *shown_path,
                                                    ExoPythonLoaderSkipFunc   skip,
                                                    gpointer                  skip_data,
                                                    ExoPythonPlugin          *plugin,
                                                    GError                  **error);

/* The Python half.  _exo_load(path, typelib_dir, overrides_dir) returns
 * (code, message) for a refusal, or (abi_major, abi_minor, name, version,
 * description, ((config_name, gtype_name), ...)).  _exo_peek_name(path)
 * returns the name the source declares, read with ast (nothing of the file
 * runs; at most 1 MiB), or None. */
static const char HELPER[] =
"import ast, importlib.machinery, importlib.util, os, sys\n"
"_MAX_TYPES = " G_STRINGIFY (EXO_PYTHON_LOADER_MAX_TYPES) "\n"
"_MAX_TEXT = 1024\n"
"_state = {'n': 0, 'ready': False}\n"
"_roots = []\n"
"\n"
"def _unsafe(st):\n"
"    return st.st_mode & 0o022 or st.st_uid not in (0, os.geteuid())\n"
"\n"
"class _SourceLoader(importlib.machinery.SourceFileLoader):\n"
"    # Compiles from the source every time: never reads or writes bytecode\n"
"    # (__pycache__) beside a plugin, and reads only a file and folder that\n"
"    # nobody but root or us can change.\n"
"    def get_code(self, fullname):\n"
"        with open(self.path, 'rb') as f:\n"
"            if _unsafe(os.fstat(f.fileno())) or _unsafe(os.stat(os.path.dirname(self.path))):\n"
"                raise ImportError('%s (or its folder) is writable by group or others or not '\n"
"                                  'owned by root or this user; not imported' % self.path)\n"
"            data = f.read()\n"
"        return compile(data, self.path, 'exec', dont_inherit=True)\n"
"\n"
"def _path_hook(entry):\n"
"    real = os.path.realpath(entry)\n"
"    if not any(real == r or real.startswith(r + os.sep) for r in _roots):\n"
"        raise ImportError('not a plugin folder')\n"
"    return importlib.machinery.FileFinder(entry, (_SourceLoader, importlib.machinery.SOURCE_SUFFIXES))\n"
"\n"
"def _add_root(folder):\n"
"    real = os.path.realpath(folder)\n"
"    if real not in _roots:\n"
"        _roots.append(real)\n"
"        for k in [k for k in sys.path_importer_cache if os.path.realpath(k).startswith(real)]:\n"
"            del sys.path_importer_cache[k]\n"
"\n"
"class _Refused(Exception):\n"
"    pass\n"
"\n"
"def _line(s, limit=400):\n"
"    s = ''.join(c if c >= ' ' and c != '\\x7f' else ' ' for c in str(s))\n"
"    return s if len(s) <= limit else s[:limit] + '...'\n"
"\n"
"def _prepare(typelib_dir, overrides_dir):\n"
"    if overrides_dir and os.path.isdir(overrides_dir) and overrides_dir not in sys.path:\n"
"        sys.path.append(overrides_dir)\n"
"    sys.dont_write_bytecode = True\n"
"    if _path_hook not in sys.path_hooks:\n"
"        sys.path_hooks.insert(0, _path_hook)\n"
"    import gi\n"
"    if typelib_dir and not os.environ.get('GI_TYPELIB_PATH') and os.path.isdir(typelib_dir):\n"
"        gi.require_version('GIRepository', '2.0')\n"
"        from gi.repository import GIRepository\n"
"        GIRepository.Repository.prepend_search_path(typelib_dir)\n"
"    gi.require_version('Exo', '1')\n"
"    from gi.repository import Exo\n"
"    if not getattr(Exo, '_exo_overrides', False):\n"
"        raise ImportError('the PyGObject overrides of Exo (gi/overrides/Exo.py) are not installed')\n"
"    report = getattr(Exo, '_exo_report_exception', None)\n"
"    if report is not None:\n"
"        sys.excepthook = lambda t, v, tb: report(v if v is not None else t())\n"
"    _state['ready'] = True\n"
"\n"
"def _text(decl, key, required):\n"
"    v = decl.get(key)\n"
"    if v is None and not required:\n"
"        return ''\n"
"    if not isinstance(v, str) or (required and not v):\n"
"        raise _Refused('%r must be a non-empty string' % key if required else '%r must be a string' % key)\n"
"    if len(v) > _MAX_TEXT:\n"
"        raise _Refused('%r is longer than %d characters' % (key, _MAX_TEXT))\n"
"    return v\n"
"\n"
"def _declaration(module):\n"
"    from gi.repository import GObject\n"
"    decl = getattr(module, 'EXO_PLUGIN', None)\n"
"    if not isinstance(decl, dict):\n"
"        raise _Refused('no EXO_PLUGIN dictionary; not an exo plugin')\n"
"    abi = _text(decl, 'abi', True)\n"
"    parts = abi.split('.')\n"
"    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 6 for p in parts):\n"
"        raise _Refused(\"'abi' must be 'MAJOR.MINOR', not %r\" % _line(abi, 40))\n"
"    types = decl.get('types')\n"
"    if not isinstance(types, dict) or not types:\n"
"        raise _Refused(\"'types' must be a non-empty dictionary of config type names to classes\")\n"
"    if len(types) > _MAX_TYPES:\n"
"        raise _Refused(\"'types' has %d entries, more than %d\" % (len(types), _MAX_TYPES))\n"
"    out = []\n"
"    for name, cls in types.items():\n"
"        if not isinstance(name, str) or len(name) > 128:\n"
"            raise _Refused(\"'types' has a key that is not a string of at most 128 characters\")\n"
"        gtype = getattr(cls, '__gtype__', None) if isinstance(cls, type) else None\n"
"        if not isinstance(gtype, GObject.GType):\n"
"            raise _Refused('type %r is not a GObject class' % _line(name, 128))\n"
"        out.append((name, gtype.name))\n"
"    return (int(parts[0]), int(parts[1]), _text(decl, 'name', True),\n"
"            _text(decl, 'version', False), _text(decl, 'description', False), tuple(out))\n"
"\n"
"def _exo_peek_name(path):\n"
"    try:\n"
"        with open(path, 'rb') as f:\n"
"            data = f.read(1 << 20)\n"
"        name = None\n"
"        for node in ast.parse(data).body:\n"
"            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and\n"
"                    any(isinstance(t, ast.Name) and t.id == 'EXO_PLUGIN' for t in node.targets)):\n"
"                for k, v in zip(node.value.keys, node.value.values):\n"
"                    if (isinstance(k, ast.Constant) and k.value == 'name' and\n"
"                            isinstance(v, ast.Constant) and isinstance(v.value, str) and\n"
"                            0 < len(v.value) <= _MAX_TEXT):\n"
"                        name = v.value\n"
"        return name\n"
"    except BaseException:\n"
"        return None\n"
"\n"
"def _exo_load(path, typelib_dir, overrides_dir):\n"
"    try:\n"
"        if not _state['ready']:\n"
"            _prepare(typelib_dir, overrides_dir)\n"
"    except BaseException as e:\n"
"        return (1, 'cannot start Python with PyGObject and the Exo typelib: %s: %s' % (type(e).__name__, _line(e)))\n"
"    pkg = os.path.basename(path) == '__init__.py'\n"
"    stem = os.path.basename(os.path.dirname(path)) if pkg else os.path.basename(path)[:-3]\n"
"    _state['n'] += 1\n"
"    modname = 'exo_plugin_%d_%s' % (_state['n'], ''.join(c if c.isalnum() else '_' for c in stem[:64]))\n"
"    folder = os.path.dirname(path)\n"
"    _add_root(folder)\n"
"    try:\n"
"        spec = importlib.util.spec_from_file_location(\n"
"            modname, path, loader=_SourceLoader(modname, path),\n"
"            submodule_search_locations=[folder] if pkg else None)\n"
"        module = importlib.util.module_from_spec(spec)\n"
"        sys.modules[modname] = module\n"
"        # a single-file plugin's helper modules, beside it, are importable\n"
"        # while it is imported (last on sys.path: they shadow nothing)\n"
"        if not pkg:\n"
"            sys.path.append(folder)\n"
"        try:\n"
"            spec.loader.exec_module(module)\n"
"        finally:\n"
"            if not pkg and folder in sys.path:\n"
"                del sys.path[len(sys.path) - 1 - sys.path[::-1].index(folder)]\n"
"    except BaseException as e:\n"
"        sys.modules.pop(modname, None)\n"
"        return (1, 'cannot import it: %s: %s' % (type(e).__name__, _line(e)))\n"
"    try:\n"
"        return _declaration(module)\n"
"    except _Refused as e:\n"
"        return (2, 'invalid plugin declaration: %s' % _line(e))\n"
"    except BaseException as e:\n"
"        return (2, 'invalid plugin declaration: %s: %s' % (type(e).__name__, _line(e)))\n";

static PyObject *load_func;     /* the helper's _exo_load; under the GIL */
static PyObject *peek_func;     /* the helper's _exo_peek_name; under the GIL */
static gboolean started;

/* Starts the interpreter and the helper; returns with the GIL released. */
static gboolean
ensure_python (const char  *shown_path,
               GError     **error)
{
  PyGILState_STATE gil;
  PyObject *globals;
  PyObject *ran;

  if (started)
    {
      if (load_func == NULL)
        g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_NOT_FOUND,
                     "%s: the Python loader failed to start", shown_path);
      return load_func != NULL;
    }
  started = TRUE;

  if (!Py_IsInitialized ())
    {
      PyConfig config;
      PyStatus status;

      PyConfig_InitPythonConfig (&config);
      config.install_signal_handlers = 0;
      /* What PyGObject prints with PyErr_Print() (a raising GLib callback
       * of a plugin) goes to sys.excepthook even for SystemExit, instead of
       * ending the node: CPython only exits there when inspect is off.  It
       * changes nothing else for an embedded interpreter (no Py_RunMain). */
      config.inspect = 1;
      config.parse_argv = 0;
      config.site_import = 1;
      status = PyConfig_SetString (&config, &config.program_name, L"exo-python-loader");
      if (!PyStatus_Exception (status))
        status = Py_InitializeFromConfig (&config);
      PyConfig_Clear (&config);
      if (PyStatus_Exception (status))
        {
          g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_NOT_FOUND,
                       "%s: cannot start Python: %s", shown_path,
                       status.err_msg != NULL ? status.err_msg : "unknown error");
          return FALSE;
        }
      /* From here on the GIL is taken per call. */
      PyEval_SaveThread ();
    }

  gil = PyGILState_Ensure ();
  globals = PyDict_New ();
  if (globals != NULL &&
      PyDict_SetItemString (globals, "__builtins__", PyEval_GetBuiltins ()) == 0 &&
      (ran = PyRun_String (HELPER, Py_file_input, globals, globals)) != NULL)
    {
      Py_DECREF (ran);
      load_func = PyDict_GetItemString (globals, "_exo_load");
      peek_func = PyDict_GetItemString (globals, "_exo_peek_name");
      if (peek_func == NULL)
        load_func = NULL;
      Py_XINCREF (load_func);
      Py_XINCREF (peek_func);
    }
  if (load_func == NULL)
    {
      PyErr_Clear ();
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_NOT_FOUND,
                   "%s: the Python loader failed to start", shown_path);
    }
  Py_XDECREF (globals);
  PyGILState_Release (gil);

  return load_func != NULL;
}

/* A str the helper made, as a GLib string; NULL for anything else. */
static char *
dup_str (PyObject *o)
{
  const char *s = o != NULL && PyUnicode_Check (o) ? PyUnicode_AsUTF8 (o) : NULL;

  if (s == NULL)
    PyErr_Clear ();
  return g_strdup (s);
}

/* Fills @plugin from the helper's result; FALSE if it is malformed. */
static gboolean
take_declaration (PyObject        *result,
                  ExoPythonPlugin *plugin)
{
  unsigned long major, minor;
  PyObject *types;
  Py_ssize_t n;

  if (!PyTuple_Check (result) || PyTuple_GET_SIZE (result) != 6)
    return FALSE;
  major = PyLong_AsUnsignedLong (PyTuple_GET_ITEM (result, 0));
  minor = PyLong_AsUnsignedLong (PyTuple_GET_ITEM (result, 1));
  if (PyErr_Occurred () || major > G_MAXUINT32 || minor > G_MAXUINT32)
    return FALSE;
  plugin->abi_major = (guint32) major;
  plugin->abi_minor = (guint32) minor;
  plugin->name = dup_str (PyTuple_GET_ITEM (result, 2));
  plugin->version = dup_str (PyTuple_GET_ITEM (result, 3));
  plugin->description = dup_str (PyTuple_GET_ITEM (result, 4));
  types = PyTuple_GET_ITEM (result, 5);
  if (plugin->name == NULL || plugin->version == NULL || plugin->description == NULL ||
      !PyTuple_Check (types))
    return FALSE;

  n = PyTuple_GET_SIZE (types);
  if (n > EXO_PYTHON_LOADER_MAX_TYPES)
    return FALSE;
  plugin->type_names = g_new0 (char *, n + 1);
  plugin->types = g_new0 (GType, n + 1);
  for (Py_ssize_t i = 0; i < n; i++)
    {
      PyObject *pair = PyTuple_GET_ITEM (types, i);
      g_autofree char *gtype_name = NULL;

      if (!PyTuple_Check (pair) || PyTuple_GET_SIZE (pair) != 2)
        return FALSE;
      plugin->type_names[i] = dup_str (PyTuple_GET_ITEM (pair, 0));
      gtype_name = dup_str (PyTuple_GET_ITEM (pair, 1));
      if (plugin->type_names[i] == NULL || gtype_name == NULL)
        return FALSE;
      /* G_TYPE_INVALID if unknown: the registrar refuses it. */
      plugin->types[i] = g_type_from_name (gtype_name);
      plugin->n_types = (guint) i + 1;
    }

  return TRUE;
}

/* Whether @skip says not to import @real_path, by the name its source
 * declares; under the GIL. */
static gboolean
skipped (const char               *real_path,
         ExoPythonLoaderSkipFunc   skip,
         gpointer                  skip_data,
         GError                  **error)
{
  PyObject *name;
  g_autofree char *text = NULL;

  if (skip == NULL)
    return FALSE;
  name = PyObject_CallFunction (peek_func, "s", real_path);
  text = dup_str (name);
  Py_XDECREF (name);
  PyErr_Clear ();
  return text != NULL && skip (text, skip_data, error);
}

gboolean
exo_python_loader_import2 (const char               *real_path,
                           const char               *shown_path,
                           ExoPythonLoaderSkipFunc   skip,
                           gpointer                  skip_data,
                           ExoPythonPlugin          *plugin,
                           GError                  **error)
{
  PyGILState_STATE gil;
  PyObject *result;
  gboolean ok = FALSE;

  g_return_val_if_fail (real_path != NULL && shown_path != NULL && plugin != NULL, FALSE);

  if (!ensure_python (shown_path, error))
    return FALSE;

  gil = PyGILState_Ensure ();
  if (skipped (real_path, skip, skip_data, error))
    {
      PyGILState_Release (gil);
      return FALSE;
    }
  result = PyObject_CallFunction (load_func, "sss", real_path, EXO_TYPELIB_DIR,
                                  EXO_PYTHON_OVERRIDES_DIR);
  if (result != NULL && PyTuple_Check (result) && PyTuple_GET_SIZE (result) == 2)
    {
      long code = PyLong_AsLong (PyTuple_GET_ITEM (result, 0));
      g_autofree char *message = dup_str (PyTuple_GET_ITEM (result, 1));

      PyErr_Clear ();
      g_set_error (error, EXO_PLUGIN_ERROR,
                   code == 2 ? EXO_PLUGIN_ERROR_INVALID : EXO_PLUGIN_ERROR_NOT_SHARED_OBJECT,
                   "%s: %s", shown_path, message != NULL ? message : "refused");
    }
  else if (result != NULL && take_declaration (result, plugin))
    ok = TRUE;
  else
    {
      PyErr_Clear ();
      _exo_python_plugin_clear (plugin);
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_INVALID,
                   "%s: the Python loader could not read its declaration", shown_path);
    }
  Py_XDECREF (result);
  PyGILState_Release (gil);

  return ok;
}
