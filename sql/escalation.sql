-- Eskalering: åtgärder per 100 elever på nivån hög frånvaro (20 %) under månaden.
-- Definition: summan av åtgärder som skolorna rapporterat för månaden (utredningar enligt
-- 7 kap. 19 a §, anmälningar till huvudmannen, orosanmälningar, SIP, förelägganden) delad med
-- antalet elever på eller över nivån `hog` i månadsfönstret, gånger 100. Skolor som inte
-- rapporterat åtgärder för månaden ingår inte (saknas är inte noll); schools_reporting visar
-- hur många som ingår.
-- Unit: actions per 100 pupils at the high level. Policy: policies/shared.toml level `hog`.
WITH per_school AS (
  SELECT s.school_unit_code, s.period, s.municipality_code, s.county_code, s.pupils AS pupils_high
  FROM school_steps s JOIN levels l ON l.level_id = 'hog'
  WHERE s."window" = 'month' AND s.measure = 'percent' AND s.band = l.percent
),
joined AS (
  SELECT p.*, a.absence_investigation, a.report_to_organiser, a.report_to_social_services, a.sip, a.injunction
  FROM per_school p
  JOIN actions a ON a.school_unit_code = p.school_unit_code AND a.period = p.period
),
areas AS (
  SELECT t.area_type,
         area_code(t.area_type, j.school_unit_code, j.municipality_code, j.county_code) AS area_code,
         j.*
  FROM area_types t CROSS JOIN joined j
)
SELECT x.area_type, x.area_code, x.period,
       count(*) AS schools_reporting,
       sum(x.pupils_high) AS pupils_high,
       sum(x.absence_investigation) AS absence_investigation,
       sum(x.report_to_organiser) AS report_to_organiser,
       sum(x.report_to_social_services) AS report_to_social_services,
       sum(x.sip) AS sip,
       sum(x.injunction) AS injunction,
       100.0 * sum(x.absence_investigation) / nullif(sum(x.pupils_high), 0) AS investigations_per_100_high,
       100.0 * sum(x.absence_investigation + x.report_to_organiser + x.report_to_social_services + x.sip + x.injunction)
             / nullif(sum(x.pupils_high), 0) AS actions_per_100_high,
       d.definition_id, d.definition_hash, d.data_version
FROM areas x CROSS JOIN definition d
GROUP BY x.area_type, x.area_code, x.period, d.definition_id, d.definition_hash, d.data_version
