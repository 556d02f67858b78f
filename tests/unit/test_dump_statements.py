"""The restore's statement check: what mariadb-dump writes for the recorded databases passes, in
any chunking; anything else is refused, naming its line (tests/integration/test_restore_refusals.py
runs the real mariadb-dump and the whole restore)."""

from __future__ import annotations

import pytest

from platform_backup.domain.dump_statements import DumpStatementCheck, Refusal

# The shapes mariadb-dump 10.11 writes (--routines --triggers --events --hex-blob), abridged.
HEAD = b"""/*M!999999\\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;

--
-- Current Database: `zstack`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `zstack` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;

USE `zstack`;
"""  # noqa: W291 (mariadb-dump's own trailing space)
BODY = b"""DROP TABLE IF EXISTS `t`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `t` (
  `a` int(11) NOT NULL,
  `b` varchar(10) DEFAULT 'x;y' COMMENT 'it''s -- not a comment',
  `c` decimal(5,2) DEFAULT 1.50,
  PRIMARY KEY (`a`),
  CONSTRAINT `fk` FOREIGN KEY (`a`) REFERENCES `zstack_rest`.`u` (`a`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
/*!40101 SET character_set_client = @saved_cs_client */;
LOCK TABLES `t` WRITE;
/*!40000 ALTER TABLE `t` DISABLE KEYS */;
INSERT INTO `t` VALUES
(1,'a\\'b; GRANT ALL ON *.* TO x',-1.5e-20),
(2,'\\\\',NULL),
(3,'line\\nnext \\\\\\' --',0x00FF);
INSERT INTO `t` VALUES (4,'x',1),(5,'GRANT',2);
/*!40000 ALTER TABLE `t` ENABLE KEYS */;
UNLOCK TABLES;
/*!50001 DROP VIEW IF EXISTS `v`*/;
SET @saved_cs_client     = @@character_set_client;
SET character_set_client = utf8mb4;
/*!50001 CREATE VIEW `v` AS SELECT
 1 AS `a` */;
SET character_set_client = @saved_cs_client;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,NO_AUTO_CREATE_USER' */ ;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER trg after insert ON `t`
FOR EACH ROW
update `t` set `b`='x' where `a`=NEW.`a` */;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50106 SET @save_time_zone= @@TIME_ZONE */ ;
/*!50106 DROP EVENT IF EXISTS `ev` */;
DELIMITER ;;
/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `ev` ON SCHEDULE EVERY 1 DAY STARTS '2026-12-03 09:47:12' ON COMPLETION NOT PRESERVE ENABLE DO INSERT INTO t VALUES (3,NULL,NULL) 
*/ ;;
DELIMITER ;
/*!50106 SET TIME_ZONE= @save_time_zone */ ;
/*!50003 DROP PROCEDURE IF EXISTS `p` */;
DELIMITER ;;
CREATE DEFINER=`root`@`localhost` PROCEDURE `p`(IN n VARCHAR(64))
BEGIN
  -- a comment; with a semicolon
  IF NOT EXISTS (SELECT * FROM information_schema.statistics WHERE table_name = n) THEN
    SET @s = CONCAT('ALTER TABLE ', n, ' ADD INDEX i (a)');
    PREPARE stmt FROM @s; EXECUTE stmt;
  END IF;
END ;;
DELIMITER ;
DROP SEQUENCE IF EXISTS `s`;
CREATE SEQUENCE `s` start with 1 minvalue 1 maxvalue 9223372036854775806 increment by 1 cache 1000 nocycle ENGINE=InnoDB;
DO SETVAL(`s`, 1, 0);
USE `zstack`;
/*!50001 DROP VIEW IF EXISTS `v`*/;
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */
/*!50001 VIEW `v` AS select `zstack`.`t`.`a` AS `a`,`zstack_rest`.`u`.`a` AS `b` from (`zstack`.`t` join `zstack_rest`.`u`) */;
"""  # noqa: E501, W291 (mariadb-dump's lines, as it writes them)
TAIL = b"""/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;

-- Dump completed on 2026-12-03  9:51:00
"""
DUMP = HEAD + BODY + TAIL
DATABASES = ["zstack", "zstack_rest"]


def check(data: bytes, size: int | None = None, databases: list[str] = DATABASES) -> Refusal | None:
    checker = DumpStatementCheck(databases)
    size = size or len(data)
    for at in range(0, len(data), size):
        checker.feed(data[at : at + size])
    return checker.finish()


@pytest.mark.parametrize("size", [1, 3, 64, 4096, len(DUMP)])
def test_what_mariadb_dump_writes_passes_in_any_chunking(size: int) -> None:
    assert check(DUMP, size) is None


REFUSED = [
    (b"GRANT ALL ON *.* TO 'x'@'%';", "not a statement mariadb-dump writes"),
    (b"use mysql;", "uses database `mysql`"),
    (b"USE `other`;", "uses database `other`"),
    (b"INSERT INTO mysql.user VALUES (1);", "not a statement mariadb-dump writes"),
    (b"INSERT INTO `mysql`.`user` VALUES ('x');", "not a statement mariadb-dump writes"),
    (b"DROP DATABASE `other`;", "not a statement mariadb-dump writes"),
    (b"DROP DATABASE `zstack`;", "not a statement mariadb-dump writes"),
    (b"CREATE DATABASE `other`;", "creates database `other`"),
    (b"CREATE USER 'x'@'%' IDENTIFIED BY 'y';", "not a statement mariadb-dump writes"),
    (b"CREATE ROLE r;", "not a statement mariadb-dump writes"),
    (b"SET GLOBAL general_log=1;", "global or account state"),
    (b"/*!40101 SET @@GLOBAL.read_only=1 */;", "global or account state"),
    (b"SET PASSWORD FOR root = PASSWORD('x');", "global or account state"),
    (b"SET SESSION sql_log_bin=0;", "global or account state"),
    (b"INSTALL PLUGIN x SONAME 'y.so';", "not a statement mariadb-dump writes"),
    (b"INSERT INTO `t` VALUES (1,(SELECT authentication_string FROM mysql.user),1);", "literal"),
    (b"INSERT INTO `t` VALUES (1,'x',1);GRANT ALL ON *.* TO x;", "literal"),
    (b"INSERT INTO `t` VALUES\n('a),\n'; GRANT ALL ON *.* TO x; ',1);", "string open"),
    # a database named in a spelling the rewriter would not rename
    (b"use `zstack`;", "form mariadb-dump does not write"),
    (b"CREATE DATABASE IF NOT EXISTS `zstack`;", "form mariadb-dump does not write"),
    (b"SET sql_mode='ANSI_QUOTES';", "quotes and backslashes"),
    (b"\\! id", "client command"),
    (b"DELIMITER $$", "delimiter"),
    (b"/* ; */ GRANT ALL ON *.* TO x;", "not a statement mariadb-dump writes"),
    (b"/*!99999 GRANT ALL ON *.* TO x */;", "not a statement mariadb-dump writes"),
    (b"/*!50003 SET @a=1; GRANT ALL ON *.* TO x */;", "conditional comment open"),
    (b"SELECT 1 INTO OUTFILE '/tmp/x';", "not a statement mariadb-dump writes"),
    (b"LOAD DATA INFILE '/etc/passwd' INTO TABLE `t`;", "not a statement mariadb-dump writes"),
    (b"RENAME TABLE `t` TO `other`.`t`;", "not a statement mariadb-dump writes"),
    (b"/*!50001 CREATE VIEW `w` AS select `User` from `mysql`.`user` */;", "system schema"),
    (
        b"DELIMITER ;;\nCREATE DEFINER=`root`@`%` PROCEDURE `q`() BEGIN GRANT ALL ON *.* TO "
        b"'x'@'%'; END ;;\nDELIMITER ;",
        "holds GRANT",
    ),
    (
        b"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER x AFTER INSERT ON `t`"
        b" FOR EACH ROW SET @@GLOBAL.general_log=1 */;",
        "holds SET @@GLOBAL",
    ),
    (b"CREATE TABLE `x` (`a` int) ENGINE=CONNECT file_name='/etc/passwd';", "outside"),
    (b"CREATE TABLE `x` (`a` int, KEY (`a`), FOREIGN KEY (`a`) REFERENCES `o`.`t` (`a`));", "`o`"),
]


@pytest.mark.parametrize(("statement", "reason"), REFUSED, ids=[r[0][:40] for r in REFUSED])
def test_anything_else_is_refused_naming_its_line(statement: bytes, reason: str) -> None:
    # Given a real-shaped dump with one foreign statement after its USE
    line = HEAD.count(b"\n") + 1
    dump = HEAD + statement + b"\n" + BODY + TAIL
    # When it is checked, in small chunks as it streams
    refused = check(dump, 7)
    # Then the statement is refused, at its line, saying why
    assert refused is not None
    assert refused.line == line + (1 if statement.startswith(b"DELIMITER ;;\n") else 0)
    assert reason in refused.reason, refused
    assert str(refused).startswith(f"line {refused.line}: ")


def test_the_first_refusal_is_the_one_reported() -> None:
    dump = HEAD + b"GRANT ALL ON *.* TO x;\nUSE `mysql`;\n" + BODY + TAIL
    refused = check(dump)
    assert refused is not None and "GRANT" in refused.statement


def test_a_dump_that_stops_inside_a_statement_is_refused() -> None:
    refused = check(HEAD + b"INSERT INTO `t` VALUES\n(1,'a',1),\n")
    assert refused is not None and "not ended" in refused.reason


def test_a_string_continued_past_an_escaped_newline_ends_where_the_client_ends_it() -> None:
    # The client pairs the backslash with the newline, so the quote on the next line closes the
    # string and what follows it is code: so does the check.
    line = HEAD.count(b"\n") + 1
    refused = check(HEAD + b"SET @a = 'x\\\n'; GRANT ALL ON *.* TO x;\n" + BODY + TAIL, 5)
    assert refused is not None and refused.line == line + 1 and "GRANT" in refused.statement


def test_comments_hide_nothing_from_the_check() -> None:
    line = HEAD.count(b"\n") + 1
    hidden = b"# a comment; GRANT\nSET @a = 1 -- ; also\n, @b = 2; /* x */ GRANT ALL ON *.* TO y;\n"
    refused = check(HEAD + hidden + BODY + TAIL, 3)
    assert refused is not None and refused.line == line + 2 and "GRANT ALL" in refused.statement
