# Collects addons/dh_collector/tests/test_modbus.py (the module's own tests) under the installed package name.
from trytond.modules.dh_collector.tests.test_modbus import *  # noqa: F401,F403
