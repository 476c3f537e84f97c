-- The school units with attendance rows in each period and window, in the municipality and
-- county the register had them then (with their school types): which schools an area's
-- report lists, and whom the benchmark compares.
SELECT DISTINCT municipality_code, period, "window", school_unit_code, county_code, school_types
FROM school_attendance
