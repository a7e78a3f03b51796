"""Print, as a JSON list, the case ids a wstest spec selects.

Runs under wstest's Python 2.7 (run.sh starts it with the prefix's
interpreter) and resolves "cases"/"exclude-cases" with the installed
autobahntestsuite's own code, so report.py can check that a report holds
every case and wstest did not stop early.

    python2.7 list_cases.py SPEC.json > expected-cases.json
"""
import json
import sys

from autobahntestsuite.case import CaseBasename, CaseCategories, CaseSubCategories, Cases
from autobahntestsuite.caseset import CaseSet


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    case_set = CaseSet("fuzzing", CaseBasename, Cases, CaseCategories, CaseSubCategories)
    json.dump(case_set.parseSpecCases(spec), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
