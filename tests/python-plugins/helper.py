# helper.py: a Python module that is not a plugin (it never names the
# marker): the loader skips it silently, and never starts Python for it.
# SPDX-License-Identifier: LGPL-2.1-or-later
raise SystemExit('helper.py must not be imported by the loader')
