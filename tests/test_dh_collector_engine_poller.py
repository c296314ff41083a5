# Collects addons/dh_collector/tests/test_engine_poller.py (the module's own tests) under the installed package name.
from trytond.modules.dh_collector.tests.test_engine_poller import *  # noqa: F401,F403
