/* bench-nop: does nothing, statically linked. bench-apply starts it beside
 * the busy victims to measure the floor of starting any process there,
 * next to `liveup --version` (the CLI starting) and `liveup apply`. */
int main(void)
{
        return 0;
}
