"""The compatibility gate: may a model change keep its event type, or is it a new version?

``pubsub-kit contracts check`` compares the JSON Schema of every event type of the topology with
the checked-in contract (``docs/contracts/<type>.schema.json``, or those of a git ref with
``--against``) and classifies each difference. From Python::

    old = checked_in_schemas(Path("docs/contracts"))
    for change in compare_contracts(old, event_schemas(TOPOLOGY)):
        print(change.sentence)  # change.breaking, change.rule, change.path

The principle
-------------
A change is *compatible* when every event valid under the old contract is still valid under the
new one, and no field an old reader relies on disappears or changes type. Such a change has a safe
roll-out order: consumers first (their new model accepts whatever producers, queued messages and
dead-letter replays still carry), producers after. A *breaking* change has no such order: publish
it as a new event type (``post.liked.v2``) next to the old one, and keep the old one until no
producer sends it.

Compatible does not mean "in any order". A consumer reading tolerantly sets aside a field it does
not know, but a widened type, a new enum value or a relaxed constraint lets a producer send what a
consumer still on the old model rejects, and a model that refuses unknown fields
(``extra="forbid"``) rejects a new one outright. Upgrade consumers before producers use what the
change allows.

The rules
---------
=============================  ==========  =================================================
rule                           verdict     example
=============================  ==========  =================================================
removed or renamed             breaking    ``liker_id`` gone (a rename is removal + addition)
new field is required          breaking    ``score: int`` added
new optional field             compatible  ``note: str | None = None`` added
optional made required         breaking    ``note: str = ""`` -> ``note: str``
required made optional         compatible  ``note: str`` -> ``note: str = ""``
type changed                   breaking    ``int`` -> ``str``; ``str | None`` -> ``str``
type widened                   compatible  ``int`` -> ``int | None``; ``int`` -> ``float``
enum narrowed                  breaking    ``Literal["a", "b"]`` -> ``Literal["a"]``
enum widened                   compatible  ``Literal["a"]`` -> ``Literal["a", "b"]``
constraint tightened           breaking    ``max_length`` 128 -> 64; a pattern or format added
constraint relaxed             compatible  ``max_length`` 64 -> 128; a pattern removed
unchecked keyword changed      breaking    a keyword the gate does not compare (``not``, ...)
annotation changed             compatible  description, title, examples, default
sensitivity changed            compatible  ``Sensitive`` or ``SensitiveKeys`` added or removed
retired                        breaking    a type in the contracts that the topology lost
retired as declared            compatible  the same, named with ``--retire TYPE``
new                            compatible  a type the contracts do not have yet
=============================  ==========  =================================================

How two schemas are compared: both are read as pydantic writes them (draft 2020-12). ``$ref`` is
followed into each side's own ``$defs`` (renaming a model class changes only its title), field
by field with a dotted path (``changes.*.new`` for a mapping's values, ``tags[]`` for a list's
items, ``pair[0]`` for a tuple's positions). ``anyOf``/``oneOf`` members and ``type`` lists are
alternatives: each old alternative must be covered by a new one of the same type (or a wider one:
``integer`` by ``number``, anything by an unconstrained ``{}``), and is compared further with the
one that fits best; new alternatives widen the type. Numeric bounds are compared as bounds
(``minimum: 0`` -> ``exclusiveMinimum: 0`` is tightened), ``multipleOf`` by divisibility.

Limitations. The gate sees the schema, not the code: a ``field_validator`` or ``model_validator``
that refuses more than before is invisible to it, as is a changed meaning under the same shape. A
changed default is reported but not breaking, although a reader of an event that left the field
out now sees another value. The rest errs on the side of breaking: patterns and formats are
compared as text (a changed pattern is tightened even when it accepts more); a keyword the gate
does not compare (``not``, ``if``, ``patternProperties``, ``allOf`` of several schemas, ...) is
breaking whenever it changes; enum values are compared as JSON text (``1`` and ``1.0`` differ). A
union member that is gone is reported through the member that would now have to take its events
(``v.kind`` enum narrowed), not by name. A schema that is not JSON Schema as pydantic writes it is
refused by :func:`check_shape` with a sentence, before any comparison.
"""

from shared.tools.compat._compare import compare_contracts, compare_schemas
from shared.tools.compat._loading import (
    CONTRACTS_DIR,
    SCHEMA_SUFFIX,
    checked_in_schemas,
    parse_schema,
    schemas_at_ref,
)
from shared.tools.compat._rules import Change, Rule, next_version, summary
from shared.tools.compat._shape import Schema, check_shape

__all__ = [
    "CONTRACTS_DIR",
    "SCHEMA_SUFFIX",
    "Change",
    "Rule",
    "Schema",
    "check_shape",
    "checked_in_schemas",
    "compare_contracts",
    "compare_schemas",
    "next_version",
    "parse_schema",
    "schemas_at_ref",
    "summary",
]
