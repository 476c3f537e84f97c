-- The levels every indicator is computed at: a school unit, its municipality, its county and
-- the whole lake ('country', code '00'). A view crosses its rows with these four and takes each
-- row's code at that level with `area_code(...)`, so the rows below are read once: a UNION ALL
-- of four selections read them four times (the histograms decoded four times).
SELECT * FROM (VALUES ('school'), ('municipality'), ('county'), ('country')) AS t(area_type)
