-- Måluppfyllelse: varje politiskt mål mot det uppmätta värdet i kommunen, termin för termin.
-- Definition: målets indikator (frånvaro, ogiltig frånvaro, andel på en gemensam nivå eller
-- rapporteringsgrad) i terminsfönstret för varje period med data, jämförd med målvärdet
-- enligt målets jämförelse; distance_pp är uppmätt minus målvärde i procentenheter. by_term
-- är terminen då målet ska vara nått.
-- Unit: percent and procentenheter. Policy: policies/targets/*.toml.
WITH measured AS (
  SELECT area_code, period, 'absence_rate' AS indicator, CAST(NULL AS VARCHAR) AS level_id, absence_pct AS value
  FROM absence_rate WHERE area_type = 'municipality' AND "window" = 'term'
  UNION ALL
  SELECT area_code, period, 'invalid_absence_rate', CAST(NULL AS VARCHAR), invalid_absence_pct
  FROM absence_rate WHERE area_type = 'municipality' AND "window" = 'term'
  UNION ALL
  SELECT area_code, period, 'share_at_or_above', level_id, share_pct
  FROM at_or_above WHERE area_type = 'municipality' AND "window" = 'term'
  UNION ALL
  SELECT area_code, period, 'reporting_rate', CAST(NULL AS VARCHAR), reporting_pct
  FROM reporting_rate WHERE area_type = 'municipality' AND "window" = 'term'
)
SELECT t.municipality_code, m.period, t.indicator, t.level_id, t.comparator, t.target_value,
       t.by_term, t.description, m.value,
       CASE t.comparator
            WHEN '<' THEN m.value < t.target_value
            WHEN '<=' THEN m.value <= t.target_value
            WHEN '>' THEN m.value > t.target_value
            ELSE m.value >= t.target_value END AS met,
       m.value - t.target_value AS distance_pp,
       t.target_hash, d.definition_id, d.definition_hash, d.data_version
FROM targets t
JOIN measured m
  ON m.area_code = t.municipality_code AND m.indicator = t.indicator
 AND coalesce(m.level_id, '') = coalesce(t.level_id, '')
CROSS JOIN definition d
