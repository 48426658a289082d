DROP TABLE telegram_links;
DROP TABLE messenger_seen;
DROP TABLE messenger_logins;
