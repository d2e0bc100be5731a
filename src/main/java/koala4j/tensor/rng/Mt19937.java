package koala4j.tensor.rng;

/**
 * 32-bit Mersenne Twister (Matsumoto and Nishimura, 1998), the engine behind torch's CPU generator
 * ({@code at::mt19937} in ATen/core/MT19937RNGEngine.h): the standard {@code init_genrand} seeding, the standard
 * twist of all 624 words at once and the standard tempering, so its words equal {@code std::mt19937}'s.
 *
 * <p>Java's {@code int} wraps modulo 2^32 like C's {@code uint32_t}; only the right shifts need care
 * ({@code >>>}, never {@code >>}). Not thread-safe.
 */
final class Mt19937 {
    private static final int N = 624;
    private static final int M = 397;
    private static final int MATRIX_A = 0x9908B0DF;
    private static final int UPPER_MASK = 0x80000000;
    private static final int LOWER_MASK = 0x7FFFFFFF;

    private final int[] state = new int[N];
    private int index;

    Mt19937(int seed) {
        seed(seed);
    }

    private Mt19937(Mt19937 other) {
        System.arraycopy(other.state, 0, state, 0, N);
        index = other.index;
    }

    /** init_genrand: the seed is the low 32 bits torch passes in (it keeps the full uint64 only for initial_seed()). */
    void seed(int seed) {
        state[0] = seed;
        for (int i = 1; i < N; i++) {
            int prev = state[i - 1];
            state[i] = 1812433253 * (prev ^ (prev >>> 30)) + i;
        }
        index = N;
    }

    /** The next tempered 32-bit word; read it as unsigned ({@code Integer.toUnsignedLong}) where the sign matters. */
    int nextInt() {
        if (index >= N) {
            twist();
        }
        int y = state[index++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9D2C5680;
        y ^= (y << 15) & 0xEFC60000;
        y ^= y >>> 18;
        return y;
    }

    Mt19937 copy() {
        return new Mt19937(this);
    }

    private void twist() {
        for (int k = 0; k < N; k++) {
            // Words before k have already been replaced: the recurrence reads the new ones, as the reference does.
            int y = (state[k] & UPPER_MASK) | (state[(k + 1) % N] & LOWER_MASK);
            int v = state[(k + M) % N] ^ (y >>> 1);
            if ((y & 1) != 0) {
                v ^= MATRIX_A;
            }
            state[k] = v;
        }
        index = 0;
    }
}
