-- Jämförelse för rektorn: skolans frånvaro mot kommunen, länet och liknande skolor.
-- Definition: skolans frånvaro (som i absence_rate) bredvid kommunens och länets samt
-- liknande skolors: skolenheter i hela sjön med samma skolformer och årskurser i registret
-- (school_types) och mellan halva och dubbla elevantalet, skolan själv undantagen. Liknande
-- skolors frånvaro räknas ur deras summerade minuter. Skillnaderna är i procentenheter.
-- Unit: percent and procentenheter. Policy: policies/shared.toml.
WITH s AS (
  SELECT a.area_code AS school_unit_code, a.period, a."window", a.students, a.absence_minutes,
         a.offered_minutes, a.absence_pct, k.school_types, k.municipality_code, k.county_code
  FROM absence_rate a
  JOIN (SELECT DISTINCT school_unit_code, period, school_types, municipality_code, county_code
        FROM school_attendance) k
    ON k.school_unit_code = a.area_code AND k.period = a.period
  WHERE a.area_type = 'school'
),
-- Each comparison group (period, window, school types) counted once per size: the schools and
-- minutes of every size up to n pupils, for n = 0 … the group's largest school. A school's
-- similar schools are then those up to 2·n pupils less those below ⌈n/2⌉, itself excluded:
-- two lookups per school rather than a comparison of every pair of schools in the group.
at_size AS (
  SELECT period, "window", school_types, students, count(*) AS schools,
         sum(absence_minutes) AS absence_minutes, sum(offered_minutes) AS offered_minutes
  FROM s
  GROUP BY period, "window", school_types, students
),
sizes AS (
  SELECT period, "window", school_types, unnest(range(0, max(students) + 1)) AS size
  FROM s
  GROUP BY period, "window", school_types
),
upto AS (
  SELECT z.period, z."window", z.school_types, z.size,
         max(z.size) OVER g AS largest,
         sum(coalesce(a.schools, 0)) OVER w AS schools,
         sum(coalesce(a.absence_minutes, 0)) OVER w AS absence_minutes,
         sum(coalesce(a.offered_minutes, 0)) OVER w AS offered_minutes
  FROM sizes z
  LEFT JOIN at_size a
    ON a.period = z.period AND a."window" = z."window" AND a.school_types = z.school_types
   AND a.students = z.size
  WINDOW g AS (PARTITION BY z.period, z."window", z.school_types),
         w AS (PARTITION BY z.period, z."window", z.school_types ORDER BY z.size
               ROWS UNBOUNDED PRECEDING)
),
similar AS (
  SELECT x.school_unit_code, x.period, x."window",
         hi.schools - coalesce(lo.schools, 0) - 1 AS similar_schools,
         100.0 * (hi.absence_minutes - coalesce(lo.absence_minutes, 0) - x.absence_minutes)
               / nullif(hi.offered_minutes - coalesce(lo.offered_minutes, 0) - x.offered_minutes, 0)
           AS similar_absence_pct
  FROM s x
  JOIN upto mine
    ON mine.period = x.period AND mine."window" = x."window" AND mine.school_types = x.school_types
   AND mine.size = x.students
  JOIN upto hi
    ON hi.period = x.period AND hi."window" = x."window" AND hi.school_types = x.school_types
   AND hi.size = least(2 * x.students, mine.largest)
  LEFT JOIN upto lo
    ON lo.period = x.period AND lo."window" = x."window" AND lo.school_types = x.school_types
   AND lo.size = (x.students + 1) / 2 - 1
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
CROSS JOIN definition d
