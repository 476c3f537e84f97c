-- Uppladdningstäckning: andel av registrets verksamma skolenheter som har laddat upp månaden.
-- Definition: för varje period i sjön räknas skolenheter som enligt registret var verksamma
-- någon dag i månaden, och hur många av dem som har rader i månadsfönstret. Låg täckning
-- betyder att områdets siffror vilar på en del av skolorna.
-- Unit: school units, and percent of registered school units. Policy: none (the register).
WITH periods AS (SELECT DISTINCT period FROM attendance),
active AS (
  SELECT p.period, r.school_unit_code, r.municipality_code, m.county_code
  FROM periods p
  JOIN register r
    ON r.valid_from < to_date(p.period || '-01') + INTERVAL '1 month'
   AND (r.valid_to IS NULL OR r.valid_to >= to_date(p.period || '-01'))
  JOIN municipalities m ON m.municipality_code = r.municipality_code
),
uploaded AS (SELECT DISTINCT school_unit_code, period FROM attendance WHERE "window" = 'month'),
flagged AS (
  SELECT a.*, CASE WHEN u.school_unit_code IS NULL THEN 0 ELSE 1 END AS has_upload
  FROM active a LEFT JOIN uploaded u ON u.school_unit_code = a.school_unit_code AND u.period = a.period
),
areas AS (
  SELECT t.area_type,
         area_code(t.area_type, f.school_unit_code, f.municipality_code, f.county_code) AS area_code,
         f.period, f.has_upload
  FROM area_types t CROSS JOIN flagged f
)
SELECT a.area_type, a.area_code, a.period,
       count(*) AS schools_registered,
       sum(a.has_upload) AS schools_uploaded,
       100.0 * sum(a.has_upload) / count(*) AS coverage_pct,
       d.definition_id, d.definition_hash, d.data_version
FROM areas a CROSS JOIN definition d
GROUP BY a.area_type, a.area_code, a.period, d.definition_id, d.definition_hash, d.data_version
