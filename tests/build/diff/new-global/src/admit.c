/* Admission control: admit(load) is 1 when work at that load is taken. */
int admit(int load)
{
        return load < 80;
}

int spare(int load)
{
        return 100 - load;
}
