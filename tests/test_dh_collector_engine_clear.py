# Collects addons/dh_collector/tests/test_engine_clear.py (the module's own tests) under the installed package name.
from trytond.modules.dh_collector.tests.test_engine_clear import *  # noqa: F401,F403
