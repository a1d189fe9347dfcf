def grad_golden_loop(x):
    _ = check_grad_input(x, "argument 'x' of golden_loop")
    stack_s = new_stack()
    stack_t = new_stack()
    stack_t_1 = new_stack()
    stack_t_2 = new_stack()
    stack_t_3 = new_stack()
    # s = 0.0
    s = 0.0
    _ = push(stack_s, s)
    # for i in range(3):
    for i in range(0, 3, 1):
        # s = s + np.sin(x[i]) * x[i]
        t = getitem(x, i)
        _ = push(stack_t, t)
        t_1 = sin(t)
        _ = push(stack_t_1, t_1)
        t_2 = getitem(x, i)
        _ = push(stack_t_2, t_2)
        t_3 = multiply(t_1, t_2)
        _ = push(stack_t_3, t_3)
        s = add(s, t_3)
        _ = push(stack_s, s)
    # s = s + np.sin(x[i]) * x[i]
    ds = grad_seed(s, 'golden_loop')
    # grad of: for i in range(3):
    dx = zero_adjoint(x)
    for i in range(2, -1, -1):
        # grad of: s = s + np.sin(x[i]) * x[i]
        ds_1 = ds
        s = pop_restore(stack_s, s)
        ds = unbroadcast(ds_1, s)
        dt_3 = unbroadcast(ds_1, t_3)
        t_5 = multiply(dt_3, t_2)
        dt_1 = unbroadcast(t_5, t_1)
        t_6 = multiply(dt_3, t_1)
        dt_2 = unbroadcast(t_6, t_2)
        t_3 = pop_restore(stack_t_3, t_3)
        t_7 = getitem_adjoint(dt_2, x, i)
        dx = add_any(dx, t_7)
        t_2 = pop_restore(stack_t_2, t_2)
        t_8 = cos(t)
        dt = multiply(dt_1, t_8)
        t_1 = pop_restore(stack_t_1, t_1)
        t_9 = getitem_adjoint(dt, x, i)
        dx = add_any(dx, t_9)
        t = pop_restore(stack_t, t)
    # return s
    return dx
