-- Rapporteringsgrad: andel av den erbjudna tiden som personalen har närvarorapporterat (procent).
-- Definition: summan av rapporterade minuter delad med summan av erbjudna minuter. Under
-- definitionens min_reporting_rate (standard 90 %) är områdets frånvarotal osäkra
-- (uncertain = true): oregistrerade lektioner kan dölja frånvaro.
-- Unit: percent of offered minutes. Policy: policies/shared.toml min_reporting_rate.
SELECT a.area_type, a.area_code, a.period, a."window",
       sum(a.reported_minutes) AS reported_minutes,
       sum(a.offered_minutes) AS offered_minutes,
       100.0 * sum(a.reported_minutes) / nullif(sum(a.offered_minutes), 0) AS reporting_pct,
       100.0 * sum(a.reported_minutes) / nullif(sum(a.offered_minutes), 0) < d.min_reporting_rate AS uncertain,
       d.min_reporting_rate,
       d.definition_id, d.definition_hash, d.data_version
FROM area_attendance a CROSS JOIN definition d
GROUP BY a.area_type, a.area_code, a.period, a."window",
         d.min_reporting_rate, d.definition_id, d.definition_hash, d.data_version
