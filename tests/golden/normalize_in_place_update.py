def in_place_update(m):
    # m = m.copy()
    m = copy(m)
    # row = m[0, :]
    t = make_slice(None, None, None)
    row = getitem(m, 0, t)
    # row[1] = 0.0
    row = setitem(row, 0.0, 1)
    m = setitem(m, row, 0, t)
    # m[1, :] *= 2.0
    t_1 = make_slice(None, None, None)
    t_2 = getitem(m, 1, t_1)
    t_3 = multiply(t_2, 2.0)
    m = setitem(m, t_3, 1, t_1)
    row = getitem(m, 0, t)
    # return m
    return m
