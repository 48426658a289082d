DROP TABLE user_payment_methods;
DROP TABLE user_addresses;
