-- Översikt: varje områdes läge (andelen elever på översiktens nivå) mot förändringen sedan samma
-- termin i fjol, i klasser, och den samlade klassen ur rutnätet.
-- Definition: andelen elever med minst nivåns frånvaro i terminsfönstret till och med perioden
-- (som i at_or_above) och skillnaden mot samma termin ett år tidigare till och med samma
-- månad, i procentenheter (som i change). Klassgränserna och rutnätet står i policyn; en klass
-- gäller från föregående klass gräns upp till (inte med) sin egen. Ett område med färre elever
-- än min_students, eller utan fjolårets andel, får ingen klass (NULL), aldrig en gissad.
-- Unit: percent and procentenheter. Policy: policies/shared.toml [overview].
WITH o AS (SELECT level_id, min_students FROM overview_settings),
now AS (
  SELECT a.area_type, a.area_code, a.period, a.students, a.pupils, a.share_pct,
         CAST(a.percent AS BIGINT) AS level_percent,
         CAST(CAST(substr(a.period, 1, 4) AS INT) - 1 AS VARCHAR) || substr(a.period, 5) AS last_year_period
  FROM at_or_above a JOIN o ON a.level_id = o.level_id
  WHERE a."window" = 'term'
),
v AS (
  SELECT n.*, y.share_pct AS last_year_share_pct, n.share_pct - y.share_pct AS change_pp,
         n.students >= o.min_students AND y.share_pct IS NOT NULL AS classed
  FROM now n
  CROSS JOIN o
  LEFT JOIN at_or_above y
    ON y.area_type = n.area_type AND y.area_code = n.area_code AND y.period = n.last_year_period
   AND y."window" = 'term' AND y.level_id = o.level_id
)
SELECT v.area_type, v.area_code, v.period, v.students, v.pupils, v.level_percent, v.share_pct,
       v.last_year_period, v.last_year_share_pct, v.change_pp,
       s.class_order AS status_order, s.class_name AS status,
       c.class_order AS change_order, c.class_name AS change,
       g.overall_order, g.overall_name AS overall,
       d.definition_id, d.definition_hash, d.data_version
FROM v
LEFT JOIN overview_classes s
  ON v.classed AND s.dimension = 'status'
 AND (s.from_value IS NULL OR v.share_pct >= s.from_value) AND (s.below IS NULL OR v.share_pct < s.below)
LEFT JOIN overview_classes c
  ON v.classed AND c.dimension = 'change'
 AND (c.from_value IS NULL OR v.change_pp >= c.from_value) AND (c.below IS NULL OR v.change_pp < c.below)
LEFT JOIN overview_grid g ON g.status_order = s.class_order AND g.change_order = c.class_order
CROSS JOIN definition d
