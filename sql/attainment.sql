-- Måluppfyllelse och frånvaro: andelen elever i årskurs 9 som är behöriga i alla ämnen bredvid frånvaron under läsåret.
-- Definition: för varje läsår med resultat (outcomes) räknas andelen godkända i alla ämnen som
-- summan av godkända delat med summan av elever i årskurs 9 (totalt och per kön K/M), och
-- frånvaron på samma skolor som frånvarominuter delat med erbjudna minuter i läsårsfönstret
-- vid läsårets sista månad (juni), för alla årskurser, samt andelen elever på nivån
-- problematisk under läsåret. Bara skolor med både resultat och ett läsårsfönster i juni
-- ingår (schools visar hur många), så frånvaro och resultat gäller samma skolor.
-- Unit: percent. Policy: policies/shared.toml level `problematisk`.
WITH results AS (
  SELECT school_unit_code, school_year,
         CAST(CAST(substr(school_year, 1, 4) AS INT) + 1 AS VARCHAR) || '-06' AS period,
         sum(grade9_students) AS grade9_students,
         sum(passed_all_subjects) AS passed_all_subjects,
         sum(CASE WHEN gender = 'K' THEN grade9_students END) AS grade9_students_k,
         sum(CASE WHEN gender = 'K' THEN passed_all_subjects END) AS passed_k,
         sum(CASE WHEN gender = 'M' THEN grade9_students END) AS grade9_students_m,
         sum(CASE WHEN gender = 'M' THEN passed_all_subjects END) AS passed_m
  FROM outcomes
  GROUP BY school_unit_code, school_year
),
minutes AS (
  SELECT school_unit_code, period, municipality_code, county_code,
         sum(offered_minutes) AS offered_minutes,
         sum(valid_absence_minutes + invalid_absence_minutes) AS absence_minutes
  FROM school_attendance
  WHERE "window" = 'school_year'
  GROUP BY school_unit_code, period, municipality_code, county_code
),
year_absence AS (
  SELECT m.*, p.students, p.pupils AS pupils_problematic
  FROM minutes m
  JOIN school_steps p
    ON p.school_unit_code = m.school_unit_code AND p.period = m.period
   AND p."window" = 'school_year' AND p.municipality_code = m.municipality_code
   AND p.county_code = m.county_code AND p.measure = 'percent'
  JOIN levels l ON l.level_id = 'problematisk' AND p.band = l.percent
),
joined AS (
  SELECT r.*, y.municipality_code, y.county_code, y.students, y.offered_minutes,
         y.absence_minutes, y.pupils_problematic
  FROM results r
  JOIN year_absence y ON y.school_unit_code = r.school_unit_code AND y.period = r.period
),
areas AS (
  SELECT t.area_type,
         area_code(t.area_type, j.school_unit_code, j.municipality_code, j.county_code) AS area_code,
         j.*
  FROM area_types t CROSS JOIN joined j
)
SELECT x.area_type, x.area_code, x.school_year, x.period,
       count(*) AS schools,
       sum(x.grade9_students) AS grade9_students,
       sum(x.passed_all_subjects) AS passed_all_subjects,
       100.0 * sum(x.passed_all_subjects) / nullif(sum(x.grade9_students), 0) AS passed_pct,
       100.0 * sum(x.passed_k) / nullif(sum(x.grade9_students_k), 0) AS passed_pct_k,
       100.0 * sum(x.passed_m) / nullif(sum(x.grade9_students_m), 0) AS passed_pct_m,
       sum(x.students) AS students,
       100.0 * sum(x.absence_minutes) / nullif(sum(x.offered_minutes), 0) AS absence_pct,
       100.0 * sum(x.pupils_problematic) / nullif(sum(x.students), 0) AS problematic_share_pct,
       d.definition_id, d.definition_hash, d.data_version
FROM areas x CROSS JOIN definition d
GROUP BY x.area_type, x.area_code, x.school_year, x.period, d.definition_id, d.definition_hash, d.data_version
