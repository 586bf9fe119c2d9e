package android.hardware;

// No sensors on this device.
public abstract class SensorManager {

    public static final float GRAVITY_EARTH = 9.80665f;
    public static final int SENSOR_DELAY_UI = 2;

    public Sensor getDefaultSensor(int type) {
        return null;
    }

    public boolean registerListener(SensorEventListener listener, Sensor sensor, int samplingPeriodUs) {
        return false;
    }

    public void unregisterListener(SensorEventListener listener) {}
}
