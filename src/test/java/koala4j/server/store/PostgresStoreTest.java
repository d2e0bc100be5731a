package koala4j.server.store;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.UUID;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;

/**
 * The same store tests against PostgreSQL: a fresh database per test on the server named by
 * KOALA4J_TEST_POSTGRES (a JDBC URL to a role that may create databases; .ci/run starts Debian's PostgreSQL and
 * sets it). Without the variable, skipped with that reason.
 */
class PostgresStoreTest extends StoreTest {

    private static final String ADMIN = System.getenv("KOALA4J_TEST_POSTGRES");
    private String database;

    @BeforeEach
    void createDatabase() throws SQLException {
        Assumptions.assumeTrue(ADMIN != null && !ADMIN.isBlank(),
                "KOALA4J_TEST_POSTGRES is not set (a jdbc:postgresql:// URL); .ci/run sets it");
        database = "koala4j_test_" + UUID.randomUUID().toString().replace("-", "");
        try (Connection c = DriverManager.getConnection(ADMIN); var st = c.createStatement()) {
            st.execute("CREATE DATABASE " + database);
        }
    }

    @AfterEach
    void dropDatabase() throws SQLException {
        if (database == null) {
            return;
        }
        try (Connection c = DriverManager.getConnection(ADMIN); var st = c.createStatement()) {
            st.execute("DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
        }
    }

    @Override
    String url() {
        // same server and credentials, the per-test database
        int slash = ADMIN.indexOf('/', "jdbc:postgresql://".length());
        int query = ADMIN.indexOf('?');
        String base = ADMIN.substring(0, slash + 1);
        return base + database + (query >= 0 ? ADMIN.substring(query) : "");
    }
}
