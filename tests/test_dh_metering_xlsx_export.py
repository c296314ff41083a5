# Collects addons/dh_metering/tests/test_xlsx_export.py (the module's own tests) under the installed package name.
from trytond.modules.dh_metering.tests.test_xlsx_export import *  # noqa: F401,F403
