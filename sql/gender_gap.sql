-- Könsskillnad: flickors frånvaro minus pojkars, i procentenheter.
-- Definition: frånvarominuter delat med erbjudna minuter för rader med kön K respektive M;
-- rader med T (grupper som slagits ihop eller elever med okänt kön) ingår inte, och
-- students_k / students_m visar hur många elever skillnaden bygger på. Positivt värde:
-- flickor har högre frånvaro.
-- Unit: percent, and procentenheter for the gap. Policy: policies/shared.toml.
SELECT a.area_type, a.area_code, a.period, a."window",
       sum(CASE WHEN a.gender = 'K' THEN a.students END) AS students_k,
       sum(CASE WHEN a.gender = 'M' THEN a.students END) AS students_m,
       100.0 * sum(CASE WHEN a.gender = 'K' THEN a.valid_absence_minutes + a.invalid_absence_minutes END)
             / nullif(sum(CASE WHEN a.gender = 'K' THEN a.offered_minutes END), 0) AS absence_pct_k,
       100.0 * sum(CASE WHEN a.gender = 'M' THEN a.valid_absence_minutes + a.invalid_absence_minutes END)
             / nullif(sum(CASE WHEN a.gender = 'M' THEN a.offered_minutes END), 0) AS absence_pct_m,
       100.0 * sum(CASE WHEN a.gender = 'K' THEN a.valid_absence_minutes + a.invalid_absence_minutes END)
             / nullif(sum(CASE WHEN a.gender = 'K' THEN a.offered_minutes END), 0)
     - 100.0 * sum(CASE WHEN a.gender = 'M' THEN a.valid_absence_minutes + a.invalid_absence_minutes END)
             / nullif(sum(CASE WHEN a.gender = 'M' THEN a.offered_minutes END), 0) AS gap_pp,
       d.definition_id, d.definition_hash, d.data_version
FROM area_attendance a CROSS JOIN definition d
WHERE a.gender IN ('K', 'M')
GROUP BY a.area_type, a.area_code, a.period, a."window", d.definition_id, d.definition_hash, d.data_version
