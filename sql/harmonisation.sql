-- Harmonisering: hur många elever varje kommuns egen åtgärdstrappa flaggar per steg, bredvid de gemensamma nivåerna.
-- Definition: för varje kommun och period räknas eleverna på eller över varje stegs gräns i
-- stegets eget fönster (månad, termin eller läsår; procent ur pct_total, timmar ur
-- hours_total, kommunens histogram summerade med hist_sum). Modellen är `gemensam` (den
-- delade definitionen), `kommunens` egen trappa, `länets` (t.ex. FNoFF i Örebro län) eller
-- `referens` (en trappa utan kommun, t.ex. timtrappan, visad för jämförelse). Steg utan numerisk gräns (t.ex. Östersunds) visas utan
-- antal: planen anger ingen gräns att räkna mot.
-- Unit: pupils, and percent of pupils. Policy: policies/shared.toml, policies/local/*.toml.
WITH steps AS (
  SELECT mu.municipality_code,
         CASE WHEN s.municipality_code IS NOT NULL THEN 'kommunens'
              WHEN s.county_code IS NOT NULL THEN 'länets'
              ELSE 'referens' END AS model,
         s.policy_id, s.policy_hash, s.step, s.step_name, s.measure, s."window", s.band
  FROM municipalities mu
  JOIN local_steps s
    ON s.municipality_code = mu.municipality_code
    OR (s.municipality_code IS NULL AND s.county_code = mu.county_code)
    OR (s.municipality_code IS NULL AND s.county_code IS NULL)
  UNION ALL
  SELECT mu.municipality_code, 'gemensam' AS model, d.definition_id, d.definition_hash,
         l.level_order, l.level_name, 'percent', w."window", l.percent
  FROM municipalities mu CROSS JOIN levels l CROSS JOIN definition d CROSS JOIN shared_windows w
),
-- The municipality's pupils at or above each band: its schools' counts added up (school_steps
-- counts every band a staircase or a shared level uses, in every window).
sums AS (
  SELECT municipality_code, period, "window", measure, band,
         sum(students) AS students, sum(pupils) AS pupils
  FROM school_steps
  GROUP BY municipality_code, period, "window", measure, band
),
counted AS (
  SELECT st.municipality_code, a.period, st.model, st.policy_id, st.policy_hash, st.step,
         st.step_name, st.measure, st."window", st.band, a.students, a.pupils
  FROM steps st
  JOIN sums a ON a.municipality_code = st.municipality_code AND a."window" = st."window"
   AND a.measure = st.measure AND a.band = st.band
  WHERE st.measure <> 'none'
),
unnumbered AS (
  SELECT st.municipality_code, p.period, st.model, st.policy_id, st.policy_hash, st.step,
         st.step_name, st.measure, st."window", st.band,
         CAST(NULL AS BIGINT) AS students, CAST(NULL AS BIGINT) AS pupils
  FROM steps st
  JOIN (SELECT DISTINCT municipality_code, period FROM school_periods) p
    ON p.municipality_code = st.municipality_code
  WHERE st.measure = 'none'
)
SELECT c.*, 100.0 * c.pupils / nullif(c.students, 0) AS share_pct,
       d.definition_id, d.definition_hash, d.data_version
FROM (SELECT * FROM counted UNION ALL SELECT * FROM unnumbered) c CROSS JOIN definition d
