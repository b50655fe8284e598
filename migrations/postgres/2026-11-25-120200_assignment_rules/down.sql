DROP TABLE assignment_rules;
