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
similar AS (
  SELECT x.school_unit_code, x.period, x."window",
         count(*) AS similar_schools,
         100.0 * sum(y.absence_minutes) / nullif(sum(y.offered_minutes), 0) AS similar_absence_pct
  FROM s x
  JOIN s y
    ON y.period = x.period AND y."window" = x."window" AND y.school_types = x.school_types
   AND y.school_unit_code <> x.school_unit_code
   AND 2 * y.students >= x.students AND y.students <= 2 * x.students
  GROUP BY x.school_unit_code, x.period, x."window"
)
SELECT x.school_unit_code, x.period, x."window", x.students, x.absence_pct,
       mu.absence_pct AS municipality_absence_pct,
       co.absence_pct AS county_absence_pct,
       coalesce(si.similar_schools, 0) AS similar_schools,
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
