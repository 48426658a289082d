DROP TABLE sms_prefix_stats;
