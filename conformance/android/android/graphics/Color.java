package android.graphics;

public final class Color {

    public static final int TRANSPARENT = 0;

    public static int argb(int alpha, int red, int green, int blue) {
        return (alpha << 24) | (red << 16) | (green << 8) | blue;
    }
}
