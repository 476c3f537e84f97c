-- Jämförelse för rektorn: skolans frånvaro mot kommunen, länet och liknande skolor.
-- Definition: skolans frånvaro (som i absence_rate) bredvid kommunens och länets samt
-- liknande skolors: skolenheter i hela sjön med samma skolformer och årskurser i registret
-- (school_types) och mellan halva och dubbla elevantalet, skolan själv undantagen. Liknande
-- skolors frånvaro räknas ur deras summerade minuter. Skillnaderna är i procentenheter.
-- Unit: percent and procentenheter. Policy: policies/shared.toml.
WITH s AS (
  SELECT a.area_code AS school_unit_code, a.period, a."window", a.students, a.absence_minutes,
         a.offered_minutes, a.absence_pct, k.school_types, k.municipality_code, k.county_code,
         -- The sizes whose running totals give the similar schools (below): up to twice its
         -- pupils (at most the group's largest school) less those below ⌈n/2⌉.
         least(2 * a.students, max(a.students) OVER (PARTITION BY a.period, a."window", k.school_types)) AS upper_size,
         (a.students + 1) / 2 - 1 AS lower_size
  FROM absence_rate a
  JOIN (SELECT DISTINCT school_unit_code, period, school_types, municipality_code, county_code
        FROM school_periods) k
    ON k.school_unit_code = a.area_code AND k.period = a.period
  WHERE a.area_type = 'school'
),
-- Each comparison group (period, window, school types) in order of size: every school once
-- with its minutes, and every school's two bounds as a marker after the schools of that size.
-- A marker's running totals are then the schools and minutes of every size up to its own:
-- one sort of the group rather than a comparison of every pair of schools in it.
marks AS (
  SELECT period, "window", school_types, students AS size, 0 AS marker,
         CAST(NULL AS VARCHAR) AS school_unit_code, CAST(NULL AS VARCHAR) AS municipality_code,
         CAST(NULL AS VARCHAR) AS bound, 1 AS schools,
         coalesce(absence_minutes, 0) AS absence_minutes,
         coalesce(offered_minutes, 0) AS offered_minutes
  FROM s
  UNION ALL
  SELECT period, "window", school_types, upper_size, 1, school_unit_code, municipality_code,
         'upper', 0, 0, 0
  FROM s
  UNION ALL
  SELECT period, "window", school_types, lower_size, 1, school_unit_code, municipality_code,
         'lower', 0, 0, 0
  FROM s
),
running AS (
  SELECT school_unit_code, period, "window", school_types, municipality_code, bound,
         sum(schools) OVER w AS schools,
         sum(absence_minutes) OVER w AS absence_minutes,
         sum(offered_minutes) OVER w AS offered_minutes,
         marker
  FROM marks
  WINDOW w AS (PARTITION BY period, "window", school_types ORDER BY size, marker
               ROWS UNBOUNDED PRECEDING)
),
bounds AS (
  SELECT school_unit_code, period, "window", school_types, municipality_code,
         sum(CASE bound WHEN 'upper' THEN schools ELSE -schools END) AS schools,
         sum(CASE bound WHEN 'upper' THEN absence_minutes ELSE -absence_minutes END) AS absence_minutes,
         sum(CASE bound WHEN 'upper' THEN offered_minutes ELSE -offered_minutes END) AS offered_minutes
  FROM running
  WHERE marker = 1
  GROUP BY school_unit_code, period, "window", school_types, municipality_code
),
similar AS (
  SELECT x.school_unit_code, x.period, x."window", x.school_types, x.municipality_code,
         b.schools - 1 AS similar_schools,
         100.0 * (b.absence_minutes - x.absence_minutes)
               / nullif(b.offered_minutes - x.offered_minutes, 0) AS similar_absence_pct
  FROM s x
  JOIN bounds b
    ON b.school_unit_code = x.school_unit_code AND b.period = x.period AND b."window" = x."window"
   AND b.school_types = x.school_types AND b.municipality_code = x.municipality_code
)
SELECT x.school_unit_code, x.period, x."window", x.students, x.absence_pct,
       mu.absence_pct AS municipality_absence_pct,
       co.absence_pct AS county_absence_pct,
       si.similar_schools,
       si.similar_absence_pct,
       x.absence_pct - mu.absence_pct AS vs_municipality_pp,
       x.absence_pct - co.absence_pct AS vs_county_pp,
       x.absence_pct - si.similar_absence_pct AS vs_similar_pp,
       x.municipality_code, x.county_code,
       d.definition_id, d.definition_hash, d.data_version
FROM s x
LEFT JOIN absence_rate mu
  ON mu.area_type = 'municipality' AND mu.area_code = x.municipality_code AND mu.period = x.period AND mu."window" = x."window"
LEFT JOIN absence_rate co
  ON co.area_type = 'county' AND co.area_code = x.county_code AND co.period = x.period AND co."window" = x."window"
LEFT JOIN similar si
  ON si.school_unit_code = x.school_unit_code AND si.period = x.period AND si."window" = x."window"
 AND si.school_types = x.school_types AND si.municipality_code = x.municipality_code
CROSS JOIN definition d
