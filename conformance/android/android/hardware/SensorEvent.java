package android.hardware;

public class SensorEvent {

    public Sensor sensor;
    public float[] values;
}
