package androidx.work;

// Loopback is always reachable, so constraints are recorded and always met.
public final class Constraints {

    public final NetworkType requiredNetworkType;

    private Constraints(NetworkType t) {
        this.requiredNetworkType = t;
    }

    public static final class Builder {

        private NetworkType type = NetworkType.NOT_REQUIRED;

        public Builder setRequiredNetworkType(NetworkType t) {
            this.type = t;
            return this;
        }

        public Constraints build() {
            return new Constraints(type);
        }
    }
}
