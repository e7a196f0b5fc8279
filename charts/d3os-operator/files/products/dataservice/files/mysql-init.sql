-- Run once by the mysql image on an empty data directory, after it has created
-- MYSQL_DATABASE and MYSQL_USER from the credentials Secret (so no password is written here).
CREATE DATABASE IF NOT EXISTS `${vars.database}` DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
GRANT ALL PRIVILEGES ON `${vars.database}`.* TO '${vars.dbUser}'@'%';
FLUSH PRIVILEGES;
