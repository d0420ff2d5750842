"""Form definitions, their conditions and the validation of visit answers (CONTRACT §9).

Pure standard-library Python, shared by the server and the tests; the PWA implements the same
rules in JavaScript and both pass ``tests/vectors/forms_validation.json``. See ``README.md``.
"""

from forms.answers import (
    calculate,
    check_value,
    offered_choices,
    problems_found,
    validate_answers,
    visit_clock,
)
from forms.definition import DefinitionError, parse_definition, validate_definition
from forms.expressions import Expression, ExpressionError, is_answered, parse_expression
from forms.loader import DEFINITIONS, FormRegistry, UnknownForm, load_definitions
from forms.messages import MESSAGES, describe
from forms.model import FIELD_TYPES, PROBLEM_CATEGORIES, Field, FormVersion, Problem

__all__ = [
    "DEFINITIONS",
    "FIELD_TYPES",
    "MESSAGES",
    "PROBLEM_CATEGORIES",
    "DefinitionError",
    "Expression",
    "ExpressionError",
    "Field",
    "FormRegistry",
    "FormVersion",
    "Problem",
    "UnknownForm",
    "calculate",
    "check_value",
    "describe",
    "is_answered",
    "load_definitions",
    "offered_choices",
    "parse_definition",
    "parse_expression",
    "problems_found",
    "validate_answers",
    "validate_definition",
    "visit_clock",
]
