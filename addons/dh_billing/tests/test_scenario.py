# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"The scenario_*.rst doctests, one pytest case each"
import unittest

from trytond.tests.test_tryton import load_doc_tests


def scenarios(package, path):
    suite = unittest.TestSuite()
    load_doc_tests(package, path, unittest.TestLoader(), suite, None)
    return list(suite)


def run_scenario(case):
    result = unittest.TestResult()
    case.run(result)
    problems = result.failures + result.errors
    assert not problems, '\n'.join(text for _, text in problems)
