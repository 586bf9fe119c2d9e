package android.os;

// A physical Android 14 phone: not an emulator, so is_emulator is false.
public class Build {

    public static final String BRAND = "conformance";
    public static final String DEVICE = "phone";
    public static final String FINGERPRINT = "conformance/phone/phone:14/UP1A/1:user/release-keys";
    public static final String HARDWARE = "qcom";
    public static final String MODEL = "Phone";
    public static final String MANUFACTURER = "Conformance";
    public static final String PRODUCT = "phone";

    public static class VERSION {

        public static final int SDK_INT = 34;
        public static final String RELEASE = "14";
    }

    public static class VERSION_CODES {

        public static final int O = 26;
        public static final int P = 28;
        public static final int Q = 29;
        public static final int R = 30;
        public static final int S = 31;
        public static final int TIRAMISU = 33;
        public static final int UPSIDE_DOWN_CAKE = 34;
    }
}
