-- 精准救助 (v21): the precision-assistance room's rows, each a JSON body by kind and id:
-- `import` — a source file as pseudonymised for the pool (ids as keyed hashes, text
-- columns emptied; the pool is replayed from these on start); `person` — the membership
-- source's personal columns (ID number, name, address) by the person's keyed hash, read
-- only through the room's purpose-bound, audited view; `case` — an assistance case and
-- its visit; `raised` — when a household was last raised for a policy, on which facts.
CREATE TABLE assistance_rows (
    kind  TEXT    NOT NULL,
    id    TEXT    NOT NULL,
    body  TEXT    NOT NULL,
    at    INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
