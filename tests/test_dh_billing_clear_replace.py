# Collects addons/dh_billing/tests/test_clear_replace.py (the module's own tests) under the installed package name.
from trytond.modules.dh_billing.tests.test_clear_replace import *  # noqa: F401,F403
