"""The main job in a few lines: remember facts through KIP and recall them.

Runs on the embedded default store (in memory, or the directory named by the
``ANDA_DB`` environment variable).
"""

import json

import anda

print(f"anda {anda.__version__} on anda_engine {anda.ENGINE_VERSION}, KIP {anda.KIP_VERSION}")

# Write: create (or update) two people, binding values as parameters.
for key, name in [("ada", "Ada Lovelace"), ("grace", "Grace Hopper")]:
    anda.execute_kip(
        'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }',
        {"key": key, "name": name},
    )

# Read: every Person, ordered by name.
response = anda.execute_kip(
    'FIND(?p.key, ?p.name) WHERE { ?p {type: "Person"} } ORDER BY ?p.name ASC LIMIT 10'
)
print(json.dumps(response["results"][0]["result"], indent=2, ensure_ascii=False))

# A dry run validates and plans, and changes nothing.
anda.execute_kip(
    'UPSERT CONCEPT ?p { MATCH { type: "Person", key: "alan" } SET FIELDS { name: "Alan" } }',
    dry_run=True,
)

# Errors are typed.
try:
    anda.execute_kip("FIND(?p WHERE")
except anda.KipSyntaxError as err:
    print("syntax error, as expected:", err.code)
