-- Attendance rows with the school's municipality, county, school types and organiser type, as the register had them in
-- the row's period (a school that changed municipality is counted where it was that month).
SELECT a.school_unit_code, a.period, a."window", a.grade, a.gender, a.students,
       a.offered_minutes, a.attendance_minutes, a.valid_absence_minutes,
       a.invalid_absence_minutes, a.other_attendance_minutes, a.reported_minutes,
       a.pct_total, a.pct_invalid, a.hours_total,
       r.municipality_code, m.county_code, r.school_types, r.organiser_type
FROM attendance a
JOIN register r
  ON r.school_unit_code = a.school_unit_code
 AND r.valid_from < to_date(a.period || '-01') + INTERVAL '1 month'
 AND (r.valid_to IS NULL OR r.valid_to >= to_date(a.period || '-01'))
JOIN municipalities m ON m.municipality_code = r.municipality_code
